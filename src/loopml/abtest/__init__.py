"""A/B testing: deterministic assignment of units to variants (the analysis comes later).

``bucket(salt, unit)`` is the one assignment function: the inference server's router and the SDK
both call it, so they agree on every unit.
"""

from __future__ import annotations

from loopml.abtest._assign import BUCKETS, assign, bucket

__all__ = ["BUCKETS", "assign", "bucket"]
