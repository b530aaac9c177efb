"""The web UI: a single page (Preact with htm, ECharts for charts; every asset ships in the
package, nothing comes from a CDN) served at ``/`` with its files under ``/ui/``. It reads and
changes everything through the same JSON API as the CLI and the SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

__all__ = ["UI_ROOT", "mount_ui"]

UI_ROOT = Path(__file__).with_name("ui")
# scripts from the server only (no inline script, no eval), no framing of the app
PAGE_HEADERS = {
    "cache-control": "no-cache",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "frame-src 'self' blob:; object-src 'none'; frame-ancestors 'none'"
    ),
}


class _Revalidated(StaticFiles):
    """Static files a browser keeps but checks (ETag) before each use, so an upgrade shows."""

    def file_response(self, *args: Any, **kwargs: Any) -> Any:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "no-cache"
        response.headers["x-content-type-options"] = "nosniff"
        if response.media_type == "text/html":  # the page itself, reached under /ui/ too
            response.headers.update(PAGE_HEADERS)
        return response


def mount_ui(app: FastAPI) -> None:
    """Serve the UI at ``/`` and its files under ``/ui/`` (compressed on the way out)."""

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(UI_ROOT / "index.html", headers=PAGE_HEADERS)

    app.mount("/ui", GZipMiddleware(_Revalidated(directory=UI_ROOT), minimum_size=1024))
