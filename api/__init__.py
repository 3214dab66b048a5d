"""The HTTP server: the JSON API under `/v1/` and the operator dashboard under `/`, one ASGI app
(FastAPI on uvicorn) over the same client library as the CLI. `heartbeats serve` runs it."""
