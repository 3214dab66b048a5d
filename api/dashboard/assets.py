"""The dashboard's scripts, served by this server (no CDN) to signed-in browsers only.

Vendored files carry their version in their name, so a browser may keep them for a year; the
dashboard's own script is asked again after an hour.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from api.dashboard.layout import SCRIPTS, Session

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/static/{name:path}")
async def script(name: str, _session: Session) -> Response:
    if name not in SCRIPTS:  # only the listed files: nothing else under static/ or beside it
        return Response("not found", status_code=404, media_type="text/plain")
    cache = "private, max-age=31536000, immutable" if name.startswith("vendor/") else "private, max-age=3600"
    return FileResponse(STATIC / name, media_type="text/javascript",
                        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})
