"""Who may do what: users and service accounts, API tokens, workspaces, grants, and the audit
log, in the metadata database.

Passwords are hashed with scrypt (a slow, memory-hard KDF from the standard library); a token
is ``lml_<id>_<secret>`` and only the SHA-256 of its secret is stored, so a database leak
yields no usable token. Repeated failed logins lock the account for a while.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update

from loopml.errors import AlreadyExists, InvalidInput, InvalidState, NotFound, Unauthenticated
from loopml.store import Database, now_ms, open_database
from loopml.store.tables import api_tokens, audit_events, grants, users, workspaces

__all__ = [
    "ROLES",
    "AuditEvent",
    "Identity",
    "SqlIdentityStore",
    "TokenInfo",
    "UserInfo",
    "csrf_token",
]

ROLES = ("reader", "editor", "manager")  # each includes the ones before it
OBJECT_TYPES = ("model", "deployment")
_NAME = re.compile(r"^[A-Za-z0-9][\w.@-]{0,254}$")
_WORKSPACE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TOKEN = re.compile(r"^lml_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MAX_FAILED_LOGINS = 5
SESSION_HOURS = 12
LOCKOUT_MS = 15 * 60_000


def csrf_token(session: str) -> str:
    """The CSRF token of a web session: derived from its secret, so nothing more is stored and
    a page of another origin, which cannot read the cookie, cannot compute it."""
    return hmac.new(session.encode(), b"loopml csrf", hashlib.sha256).hexdigest()


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` for ``password``."""
    if not isinstance(password, str) or not 8 <= len(password) <= 1024:
        raise InvalidInput("a password must be 8 to 1024 characters")
    try:
        password.encode()
    except UnicodeEncodeError:
        raise InvalidInput("a password must be valid text (it holds a lone surrogate)") from None
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.urlsafe_b64encode
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + f"{b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` result (constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.urlsafe_b64decode(salt),
            dklen=32,
            n=int(n),
            r=int(r),
            p=int(p),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.urlsafe_b64decode(digest))


_DUMMY_HASH = hash_password("not a real password")


@dataclass
class UserInfo:
    """A user or service account (never its password hash)."""

    name: str
    kind: str
    is_admin: bool
    disabled: bool
    created_at: int
    grants: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass
class TokenInfo:
    """An API token's public facts; ``secret`` only once, when it is created."""

    token_id: str
    user: str
    name: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None
    secret: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the secret only if this is the creation's answer)."""
        data = asdict(self)
        if self.secret is None:
            data.pop("secret")
        return data


@dataclass
class Identity:
    """An authenticated caller: its name, admin flag and roles."""

    name: str
    is_admin: bool = False
    roles: dict[str, str] = field(default_factory=dict)  # workspace -> role
    object_roles: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def role_in(self, workspace: str, obj: tuple[str, str] | None = None) -> str | None:
        """The caller's highest role in ``workspace`` (or on one object of it)."""
        if self.is_admin:
            return "manager"
        found = [self.roles.get(workspace)]
        if obj is not None:
            found.append(self.object_roles.get((workspace, *obj)))
        ranked = [r for r in found if r is not None]
        return max(ranked, key=ROLES.index) if ranked else None

    def can(self, workspace: str, role: str, obj: tuple[str, str] | None = None) -> bool:
        """Whether the caller holds ``role`` (or a higher one) there."""
        have = self.role_in(workspace, obj)
        return have is not None and ROLES.index(have) >= ROLES.index(role)


@dataclass
class AuditEvent:
    """One recorded mutation."""

    seq: int
    time: int
    actor: str
    workspace: str
    action: str
    object_type: str
    object_name: str
    status: int
    remote: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _text(value: str) -> str:
    """``value`` with anything UTF-8 cannot hold escaped."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_name(name: Any, what: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"{what} must be 1-255 letters, digits, '_', '.', '@', '-'")
    return name


def _check_role(role: Any) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    return str(role)


class SqlIdentityStore:
    """Users, tokens, workspaces, grants and the audit log of one database."""

    def __init__(self, database: Database | str) -> None:
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}  # (user, address)
        self.db = open_database(database) if isinstance(database, str) else database

    # -- users ----------------------------------------------------------------------------------
    def has_users(self) -> bool:
        """Whether any user exists, even disabled (then every request must authenticate)."""
        with self.db.read() as conn:
            return conn.execute(select(users.c.user_id).limit(1)).first() is not None

    def create_user(
        self,
        name: str,
        *,
        password: str | None = None,
        admin: bool = False,
        service: bool = False,
    ) -> UserInfo:
        """A new user (with a password to sign in to the UI) or service account (tokens only)."""
        _check_name(name)
        if service and password is not None:
            raise InvalidInput("a service account has tokens, not a password")
        hashed = None if password is None else hash_password(password)
        now = now_ms()
        with self.db.write() as conn:
            if conn.execute(select(users.c.user_id).where(users.c.name == name)).first():
                raise AlreadyExists(f"user {name!r} already exists")
            conn.execute(
                insert(users).values(
                    name=name,
                    kind="service" if service else "user",
                    password_hash=hashed,
                    is_admin=bool(admin),
                    disabled=False,
                    failed_logins=0,
                    created_at=now,
                )
            )
        return self.get_user(name)

    def _user_row(self, conn: Any, name: str) -> Any:
        row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFound(f"user {name!r} does not exist")
        return row

    def _grants_of(self, conn: Any, user_ids: Sequence[int]) -> dict[int, list[dict[str, str]]]:
        out: dict[int, list[dict[str, str]]] = {u: [] for u in user_ids}
        if not user_ids:
            return out
        for g in conn.execute(select(grants).where(grants.c.user_id.in_(list(user_ids)))).all():
            entry = {"workspace": g.workspace, "role": g.role}
            if g.object_type:
                entry.update(object_type=g.object_type, object_name=g.object_name)
            out[g.user_id].append(entry)
        return out

    def _info(self, row: Any, user_grants: list[dict[str, str]]) -> UserInfo:
        return UserInfo(
            name=row.name,
            kind=row.kind,
            is_admin=bool(row.is_admin),
            disabled=bool(row.disabled),
            created_at=row.created_at,
            grants=user_grants,
        )

    def get_user(self, name: str) -> UserInfo:
        """One user with its grants."""
        with self.db.read() as conn:
            row = self._user_row(conn, name)
            return self._info(row, self._grants_of(conn, [row.user_id])[row.user_id])

    def list_users(self) -> list[UserInfo]:
        """Every user and service account, by name."""
        with self.db.read() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
            found = self._grants_of(conn, [r.user_id for r in rows])
        return [self._info(r, found[r.user_id]) for r in rows]

    def set_disabled(self, name: str, disabled: bool = True) -> UserInfo:
        """Disable (or enable) a user: its tokens and sessions stop working at once."""
        with self.db.write() as conn:
            row = self._user_row(conn, name)
            conn.execute(
                update(users).where(users.c.user_id == row.user_id).values(disabled=disabled)
            )
        return self.get_user(name)

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password: its web sessions end and its lockouts are cleared."""
        hashed = hash_password(password)
        with self.db.write() as conn:
            row = self._user_row(conn, name)
            if row.kind == "service":
                raise InvalidInput("a service account has tokens, not a password")
            conn.execute(
                update(users)
                .where(users.c.user_id == row.user_id)
                .values(password_hash=hashed, failed_logins=0, locked_until=None)
            )
            conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.user_id == row.user_id,
                    api_tokens.c.kind == "session",
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now_ms())
            )
        with self._lock:
            self._failures = {k: v for k, v in self._failures.items() if k[0] != name}

    def login(self, name: str, password: str, *, remote: str = "") -> Identity:
        """Check a password. Five failures in a row for one user from one client address lock
        that pair out for 15 minutes (another address, the user's own, is not locked out by an
        attacker's guesses). Every refusal says the same and takes as long.

        Raises:
            Unauthenticated: wrong name or password, a disabled user, or a locked pair.
        """
        key = (name, remote)
        now = time.monotonic()
        with self._lock:
            failures, until = self._failures.get(key, (0, 0.0))
        locked = until > now
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        usable = row is not None and not row.disabled and row.password_hash is not None
        # the hash is always computed, so that no answer comes faster than another
        ok = check_password(password, row.password_hash if usable else _DUMMY_HASH)
        if ok and usable and not locked:
            with self._lock:
                self._failures.pop(key, None)
            return self.identity(name)
        if not locked:
            failures += 1
            until = now + LOCKOUT_MS / 1000 if failures >= MAX_FAILED_LOGINS else 0.0
            with self._lock:
                if len(self._failures) > 100_000:  # forget old pairs rather than grow
                    self._failures = {k: v for k, v in self._failures.items() if v[1] > now}
                self._failures[key] = (0 if until else failures, until)
        raise Unauthenticated("wrong user name or password")

    def identity(self, name: str) -> Identity:
        """The roles of an enabled user."""
        with self.db.read() as conn:
            row = self._user_row(conn, name)
            if row.disabled:
                raise InvalidState(f"user {name!r} is disabled")
            rows = conn.execute(select(grants).where(grants.c.user_id == row.user_id)).all()
        ident = Identity(name=row.name, is_admin=bool(row.is_admin))
        for g in rows:
            if g.object_type:
                ident.object_roles[(g.workspace, g.object_type, g.object_name)] = g.role
            else:
                ident.roles[g.workspace] = g.role
        return ident

    # -- tokens ---------------------------------------------------------------------------------
    def create_token(
        self, user: str, name: str = "token", *, expires_in_days: float | None = 90
    ) -> TokenInfo:
        """A new token for ``user``; the returned ``secret`` is shown once and never stored."""
        _check_name(name, "token name")
        if expires_in_days is not None and not 0 < float(expires_in_days) <= 3650:
            raise InvalidInput("expires_in_days must be in (0, 3650] or none")
        return self._new_token(user, name, expires_in_days, "api")

    def _new_token(
        self, user: str, name: str, expires_in_days: float | None, kind: str
    ) -> TokenInfo:
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = now_ms()
        expires = None if expires_in_days is None else now + int(expires_in_days * 86_400_000)
        with self.db.write() as conn:
            row = self._user_row(conn, user)
            if row.disabled:
                raise InvalidState(f"user {user!r} is disabled")
            conn.execute(
                insert(api_tokens).values(
                    token_id=token_id,
                    user_id=row.user_id,
                    name=name,
                    secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
                    created_at=now,
                    expires_at=expires,
                    kind=kind,
                )
            )
        return TokenInfo(
            token_id, user, name, now, expires, None, None, secret=f"lml_{token_id}_{secret}"
        )

    # -- web sessions ---------------------------------------------------------------------------
    def start_session(self, name: str, password: str, *, remote: str = "") -> TokenInfo:
        """Sign in with a password from a client address: a session (a token of kind
        "session", for a cookie) that lasts ``SESSION_HOURS``; failures count towards the
        lockout of that user from that address.

        Raises:
            Unauthenticated: wrong name or password, or a locked pair.
        """
        self.login(name, password, remote=remote)
        return self._new_token(name, "web session", SESSION_HOURS / 24, "session")

    def end_session(self, session: str) -> None:
        """Sign out: the session stops working at once (an unknown one is ignored)."""
        match = _TOKEN.match(session or "")
        if match is None:
            return
        with self.db.write() as conn:
            conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.token_id == match.group(1),
                    api_tokens.c.kind == "session",
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now_ms())
            )

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens (of one user), newest first, without secrets."""
        query = (
            select(api_tokens, users.c.name.label("user"))
            .join(users, users.c.user_id == api_tokens.c.user_id)
            .where(api_tokens.c.kind == "api")
        )
        if user is not None:
            query = query.where(users.c.name == user)
        with self.db.read() as conn:
            if user is not None:
                self._user_row(conn, user)
            rows = conn.execute(query.order_by(api_tokens.c.created_at.desc())).all()
        return [
            TokenInfo(
                r.token_id,
                r.user,
                r.name,
                r.created_at,
                r.expires_at,
                r.revoked_at,
                r.last_used_at,
            )
            for r in rows
        ]

    def token_owner(self, token_id: str) -> str:
        """The user a token belongs to."""
        with self.db.read() as conn:
            row = conn.execute(
                select(users.c.name)
                .join(api_tokens, api_tokens.c.user_id == users.c.user_id)
                .where(api_tokens.c.token_id == token_id)
            ).first()
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist")
        return str(row.name)

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token: it stops working at once."""
        with self.db.write() as conn:
            changed = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            ).rowcount
        if changed != 1:
            self.token_owner(token_id)  # NotFound if there is no such token
            raise InvalidState(f"token {token_id!r} is already revoked")

    def authenticate(self, bearer: str, kind: str = "api") -> Identity | None:
        """The identity behind a token (``kind`` "api") or a web session ("session"), or None
        (unknown, wrong kind, wrong secret, expired, revoked, disabled)."""
        match = _TOKEN.match(bearer or "")
        if match is None:
            return None
        token_id, secret = match.groups()
        now = now_ms()
        with self.db.read() as conn:
            row = conn.execute(
                select(api_tokens, users.c.name.label("user"), users.c.disabled)
                .join(users, users.c.user_id == api_tokens.c.user_id)
                .where(api_tokens.c.token_id == token_id)
            ).first()
        if row is None:
            return None
        given = hashlib.sha256(secret.encode()).hexdigest()
        if not hmac.compare_digest(given, row.secret_hash):
            return None
        if row.revoked_at is not None or row.disabled or row.kind != kind:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or now - row.last_used_at > 60_000:  # at most once a minute
            with self.db.write() as conn:
                conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.token_id == token_id)
                    .values(last_used_at=now)
                )
        return self.identity(row.user)

    # -- workspaces and grants ------------------------------------------------------------------
    def create_workspace(self, name: str, description: str = "") -> dict[str, Any]:
        """A new workspace."""
        if not isinstance(name, str) or not _WORKSPACE.match(name):
            raise InvalidInput("a workspace name is 1-63 lowercase letters, digits and '-'")
        with self.db.write() as conn:
            if conn.execute(select(workspaces.c.name).where(workspaces.c.name == name)).first():
                raise AlreadyExists(f"workspace {name!r} already exists")
            conn.execute(
                insert(workspaces).values(
                    name=name, description=str(description)[:1000], created_at_ms=now_ms()
                )
            )
        return {"name": name, "description": description}

    def list_workspaces(self) -> list[dict[str, Any]]:
        """Every workspace, by name."""
        with self.db.read() as conn:
            rows = conn.execute(select(workspaces).order_by(workspaces.c.name)).all()
        return [{"name": r.name, "description": r.description or ""} for r in rows]

    def add_grant(
        self,
        user: str,
        workspace: str,
        role: str,
        *,
        object_type: str = "",
        object_name: str = "",
    ) -> None:
        """Give ``user`` a role in a workspace, or on one model or deployment of it (a second
        grant on the same scope replaces the role)."""
        _check_role(role)
        if object_type and object_type not in OBJECT_TYPES:
            raise InvalidInput(f"object_type must be one of {', '.join(OBJECT_TYPES)}")
        if bool(object_type) != bool(object_name):
            raise InvalidInput("give both object_type and object_name, or neither")
        with self.db.write() as conn:
            row = self._user_row(conn, user)
            if not conn.execute(
                select(workspaces.c.name).where(workspaces.c.name == workspace)
            ).first():
                raise NotFound(f"workspace {workspace!r} does not exist")
            scope = and_(
                grants.c.user_id == row.user_id,
                grants.c.workspace == workspace,
                grants.c.object_type == object_type,
                grants.c.object_name == object_name,
            )
            conn.execute(delete(grants).where(scope))
            conn.execute(
                insert(grants).values(
                    user_id=row.user_id,
                    workspace=workspace,
                    role=role,
                    object_type=object_type,
                    object_name=object_name,
                    created_at=now_ms(),
                )
            )

    def remove_grant(
        self, user: str, workspace: str, *, object_type: str = "", object_name: str = ""
    ) -> None:
        """Take a grant back."""
        with self.db.write() as conn:
            row = self._user_row(conn, user)
            removed = conn.execute(
                delete(grants).where(
                    grants.c.user_id == row.user_id,
                    grants.c.workspace == workspace,
                    grants.c.object_type == object_type,
                    grants.c.object_name == object_name,
                )
            ).rowcount
        if removed == 0:
            raise NotFound(f"user {user!r} has no such grant in {workspace!r}")

    def list_grants(self, workspace: str | None = None) -> list[dict[str, str]]:
        """Grants (of one workspace)."""
        query = select(grants, users.c.name.label("user")).join(
            users, users.c.user_id == grants.c.user_id
        )
        if workspace is not None:
            query = query.where(grants.c.workspace == workspace)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(grants.c.workspace, users.c.name)).all()
        return [
            {
                "user": r.user,
                "workspace": r.workspace,
                "role": r.role,
                "object_type": r.object_type,
                "object_name": r.object_name,
            }
            for r in rows
        ]

    # -- audit ----------------------------------------------------------------------------------
    def audit(
        self,
        *,
        actor: str,
        workspace: str,
        action: str,
        object_type: str = "",
        object_name: str = "",
        status: int = 200,
        remote: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one event to the audit log (text that cannot be stored as is, such as a lone
        surrogate from a hostile client, is escaped rather than lost)."""
        with self.db.write() as conn:
            conn.execute(
                insert(audit_events).values(
                    time=now_ms(),
                    actor=_text(actor)[:255],
                    workspace=_text(workspace)[:63],
                    action=_text(action)[:255],
                    object_type=_text(object_type)[:32],
                    object_name=_text(object_name)[:1000],
                    status=int(status),
                    remote=_text(remote)[:255],
                    detail=json.dumps(detail or {}, default=str, ensure_ascii=True),
                )
            )

    def audit_log(
        self,
        *,
        actor: str | None = None,
        workspace: str | None = None,
        object_type: str | None = None,
        object_name: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Audit events, newest first, filtered by actor, workspace and object."""
        if not 1 <= int(limit) <= 10_000:
            raise InvalidInput("limit must be in [1, 10000]")
        query = select(audit_events)
        for column, value in (
            (audit_events.c.actor, actor),
            (audit_events.c.workspace, workspace),
            (audit_events.c.object_type, object_type),
            (audit_events.c.object_name, object_name),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(audit_events.c.seq.desc()).limit(int(limit))).all()
        return [
            AuditEvent(
                seq=r.seq,
                time=r.time,
                actor=r.actor,
                workspace=r.workspace,
                action=r.action,
                object_type=r.object_type,
                object_name=r.object_name,
                status=r.status,
                remote=r.remote,
                detail=json.loads(r.detail),
            )
            for r in rows
        ]

    def count_users(self) -> int:
        """How many users exist."""
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())
