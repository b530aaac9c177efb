"""Sticky assignment: a unit id hashes to one of 10,000 buckets, and buckets map to variants.

The bucket is the first 8 bytes of SHA-256 over ``"<salt>:<unit>"`` (UTF-8), read big-endian,
modulo 10,000: stable across processes, machines, restarts and languages. Variants take
consecutive bucket ranges in the order given, sized by weight, so the same unit lands on the same
variant for as long as the salt and the weights stay.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence

from loopml.errors import InvalidInput

__all__ = ["BUCKETS", "assign", "bucket"]

BUCKETS = 10_000


def bucket(salt: str, unit: str) -> int:
    """The bucket (0..9999) of ``unit`` under ``salt``."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(salt: str, unit: str, variants: Sequence[tuple[str, float]]) -> str:
    """The variant of ``unit``: ``variants`` are (name, weight) pairs, weights of any scale."""
    total = sum(w for _, w in variants)
    if not variants or total <= 0 or any(w < 0 for _, w in variants):
        raise InvalidInput("variants need non-negative weights that sum above 0")
    edges, acc = [], 0.0
    for _, w in variants:
        acc += w
        edges.append(round(acc / total * BUCKETS))
    edges[-1] = BUCKETS
    return variants[bisect_right(edges, bucket(salt, unit))][0]
