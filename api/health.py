"""`GET /v1/health`: the server is up and the token works."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter()


class Health(BaseModel):
    ok: bool


@router.get("/health", response_model=Health, summary="The server answers and the token is valid")
async def health() -> Health:
    return Health(ok=True)
