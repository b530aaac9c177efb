"""The identity store over a loopml server's administration routes, for ``loopml users |
tokens | workspaces | grants | audit`` when ``LOOPML_TRACKING_URI`` names a server (with an
admin's token); the same methods and results as ``SqlIdentityStore``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from loopml.server._identity import AuditEvent, TokenInfo, UserInfo
from loopml.tracking import RestRoutes

__all__ = ["RestIdentityStore"]


def _seg(value: str) -> str:
    return quote(value, safe="")


class RestIdentityStore(RestRoutes):
    """Users, tokens, workspaces, grants and the audit log through ``/api/v1/admin/...``."""

    def _in(self, workspace: str) -> Any:
        return self._http.for_workspace(workspace)

    def create_user(
        self,
        name: str,
        *,
        password: str | None = None,
        admin: bool = False,
        service: bool = False,
    ) -> UserInfo:
        """A new user (or service account)."""
        body = {"name": name, "admin": admin, "service": service}
        if password is not None:
            body["password"] = password
        return UserInfo(**self._http.request("POST", "/admin/users", body=body)["user"])

    def list_users(self) -> list[UserInfo]:
        """Every user with its grants."""
        return [UserInfo(**u) for u in self._http.request("GET", "/admin/users")["users"]]

    def set_disabled(self, name: str, disabled: bool = True) -> UserInfo:
        """Disable (or enable) a user."""
        action = "disable" if disabled else "enable"
        found = self._http.request("POST", f"/admin/users/{_seg(name)}/{action}")
        return UserInfo(**found["user"])

    def set_password(self, name: str, password: str) -> None:
        """Set a user's password."""
        body = {"password": password}
        self._http.request("POST", f"/admin/users/{_seg(name)}/password", body=body)

    def create_token(
        self, user: str, name: str = "token", *, expires_in_days: float | None = 90
    ) -> TokenInfo:
        """A new token for ``user`` (its secret shown once)."""
        body = {"name": name, "expires_in_days": expires_in_days}
        made = self._http.request("POST", f"/admin/users/{_seg(user)}/tokens", body=body)
        return TokenInfo(**made["token"])

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens (of one user), without secrets."""
        found = self._http.request("GET", "/admin/tokens", params={"user": user})
        return [TokenInfo(**t) for t in found["tokens"]]

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token."""
        self._http.request("DELETE", f"/admin/tokens/{_seg(token_id)}")

    def create_workspace(self, name: str, description: str = "") -> dict[str, Any]:
        """A new workspace."""
        body = {"name": name, "description": description}
        made = self._http.request("POST", "/admin/workspaces", body=body)
        return dict(made["workspace"])

    def list_workspaces(self) -> list[dict[str, Any]]:
        """Every workspace."""
        return list(self._http.request("GET", "/admin/workspaces")["workspaces"])

    def add_grant(
        self,
        user: str,
        workspace: str,
        role: str,
        *,
        object_type: str = "",
        object_name: str = "",
    ) -> None:
        """Give ``user`` a role in a workspace (or on one object of it)."""
        body = {"user": user, "role": role}
        if object_type:
            body.update(object_type=object_type, object_name=object_name)
        self._in(workspace).request("POST", "/grants", body=body)

    def remove_grant(
        self, user: str, workspace: str, *, object_type: str = "", object_name: str = ""
    ) -> None:
        """Take a grant back."""
        params = {"user": user, "object_type": object_type, "object_name": object_name}
        self._in(workspace).request("DELETE", "/grants", params=params)

    def list_grants(self, workspace: str | None = None) -> list[dict[str, str]]:
        """Grants of one workspace, or of all of them."""
        if workspace is not None:
            return list(self._in(workspace).request("GET", "/grants")["grants"])
        found = [
            {
                "user": u.name,
                "workspace": g["workspace"],
                "role": g["role"],
                "object_type": g.get("object_type", ""),
                "object_name": g.get("object_name", ""),
            }
            for u in self.list_users()
            for g in u.grants
        ]
        return sorted(found, key=lambda g: (g["workspace"], g["user"]))

    def audit_log(
        self,
        *,
        actor: str | None = None,
        workspace: str | None = None,
        object_type: str | None = None,
        object_name: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """The audit log, newest first."""
        params = {
            "actor": actor,
            "workspace": workspace,
            "object_type": object_type,
            "object_name": object_name,
            "limit": limit,
        }
        found = self._http.request("GET", "/admin/audit", params=params)
        return [AuditEvent(**e) for e in found["events"]]
