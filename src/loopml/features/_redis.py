"""The Redis online store: one hash per (view, entity key) with the event time ``t``, the
created time ``c`` and the values ``v`` (JSON); a Lua script makes writes "newer wins"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from loopml.errors import InvalidInput, MissingDependency, StoreError
from loopml.features._online import OnlineStore, Record

__all__ = ["RedisOnlineStore"]

_UPSERT = """
local cur = redis.call('HMGET', KEYS[1], 't', 'c')
if cur[1] then
  local t = tonumber(cur[1])
  local nt = tonumber(ARGV[1])
  if nt < t or (nt == t and tonumber(ARGV[2]) < tonumber(cur[2] or '0')) then return 0 end
end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'c', ARGV[2], 'v', ARGV[3])
return 1
"""
_BATCH = 1000


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else str(key)


class RedisOnlineStore(OnlineStore):
    """Feature values in Redis under ``prefix`` (the ``[redis]`` extra)."""

    def __init__(self, url: str, *, prefix: str = "loopml:") -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the extra is in dev
            raise MissingDependency("a redis:// online store needs the [redis] extra") from exc
        self.uri = url
        self.prefix = prefix
        self._redis = redis
        self.client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
        self._upsert = self.client.register_script(_UPSERT)

    def _guard(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._redis.RedisError as exc:
            raise StoreError(f"redis online store {self.uri}: {exc}") from exc

    def _name(self, table: str, key: Any) -> str:
        return f"{self.prefix}{table}:{_key_text(key)}"

    def prepare(self, table: str, features: Sequence[str]) -> None:
        return None  # hashes hold whatever features a write brings

    def write(self, table: str, features: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> int:
        names = list(features)

        def run() -> int:
            written = 0
            for i in range(0, len(rows), _BATCH):
                pipe = self.client.pipeline(transaction=False)
                for row in rows[i : i + _BATCH]:
                    values = dict(zip(names, row[3:], strict=True))
                    for v in values.values():
                        if isinstance(v, (bytes, bytearray)):
                            raise InvalidInput("the redis online store cannot hold Bytes features")
                    self._upsert(
                        keys=[self._name(table, row[0])],
                        args=[row[1], row[2], orjson.dumps(values)],
                        client=pipe,
                    )
                written += sum(int(r) for r in pipe.execute())
            return written

        return int(self._guard(run))

    def read(
        self, table: str, keys: Sequence[Any], features: Sequence[str]
    ) -> list[Record | None]:
        if not keys:
            return []
        if len(keys) == 1:
            got = [self._guard(self.client.hmget, self._name(table, keys[0]), ("t", "v"))]
        else:

            def run() -> list[Any]:
                pipe = self.client.pipeline(transaction=False)
                for k in keys:
                    pipe.hmget(self._name(table, k), ("t", "v"))
                return list(pipe.execute())

            got = self._guard(run)
        out: list[Record | None] = []
        for k, (t, v) in zip(keys, got, strict=True):
            if t is None:
                out.append(None)
                continue
            values = orjson.loads(v)
            out.append((k, int(t), *(values.get(f) for f in features)))
        return out

    def _scan(self, table: str) -> Any:
        return self.client.scan_iter(match=f"{self.prefix}{table}:*", count=1000)

    def drop(self, table: str) -> None:
        def run() -> None:
            batch: list[bytes] = []
            for key in self._scan(table):
                batch.append(key)
                if len(batch) >= _BATCH:
                    self.client.unlink(*batch)
                    batch = []
            if batch:
                self.client.unlink(*batch)

        self._guard(run)

    def count(self, table: str) -> int:
        return int(self._guard(lambda: sum(1 for _ in self._scan(table))))

    def close(self) -> None:
        self.client.close()
