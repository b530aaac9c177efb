"""The wire form of a batch of blobs: for each, its 32-byte raw digest, its length as an
8-byte big-endian integer, then its bytes. One request carries hundreds of small files."""

from __future__ import annotations

from collections.abc import Iterable

from loopml.errors import InvalidInput

__all__ = ["decode_blobs", "encode_blobs"]

_HEADER = 40


def encode_blobs(blobs: Iterable[tuple[str, bytes]]) -> bytes:
    """Concatenate blobs into one body."""
    parts: list[bytes] = []
    for digest, data in blobs:
        parts.append(bytes.fromhex(digest))
        parts.append(len(data).to_bytes(8, "big"))
        parts.append(data)
    return b"".join(parts)


def decode_blobs(body: bytes | memoryview) -> list[tuple[str, bytes]]:
    """Split a body made by ``encode_blobs``; a truncated body raises ``InvalidInput``."""
    view = memoryview(body)
    out: list[tuple[str, bytes]] = []
    pos = 0
    while pos < len(view):
        if pos + _HEADER > len(view):
            raise InvalidInput("blob batch is truncated inside a header")
        digest = bytes(view[pos : pos + 32]).hex()
        length = int.from_bytes(view[pos + 32 : pos + _HEADER], "big")
        start = pos + _HEADER
        if start + length > len(view):
            raise InvalidInput(f"blob batch is truncated inside blob {digest}")
        out.append((digest, bytes(view[start : start + length])))
        pos = start + length
    return out
