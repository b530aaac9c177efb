"""Runs the server under uvicorn."""

from __future__ import annotations

from loopml.config import get_settings


def run_server(
    host: str = "127.0.0.1", port: int = 5000, *, workers: int = 1, log_level: str = "warning"
) -> None:
    """Serve the control plane on ``host:port`` (blocking) with ``workers`` processes;
    ``log_level`` "info" adds the access log (method, path, status; never headers)."""
    import uvicorn

    settings = get_settings()
    # Open (and if needed create or upgrade) the database once, before workers start.
    from loopml.store import open_database

    open_database(settings.resolved_database_uri)
    if workers > 1:
        uvicorn.run(
            "loopml.server._app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
        )
    else:
        from loopml.server._app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
