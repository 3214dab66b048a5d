"""Reliability drills (`make drills`, `python -m drills`): crash the worker and the server on
purpose and check that nothing is lost and nothing happens twice. See docs/reliability.md."""
