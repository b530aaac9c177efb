"""The control-plane HTTP server: ``/api/v1`` JSON API with an OpenAPI schema, ``/health``."""

from __future__ import annotations

from loopml.server._app import create_app
from loopml.server._identity import ROLES, SqlIdentityStore
from loopml.server._identity_rest import RestIdentityStore
from loopml.server._run import run_server

__all__ = ["ROLES", "RestIdentityStore", "SqlIdentityStore", "create_app", "run_server"]
