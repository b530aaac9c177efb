"""The seeds' A/B tests: sticky hash assignment of users to A and B (seed 000's
``assign_bucket``), conversion rates, lift and a significance test (seed 000's
``chi2_contingency``, seed 001's ``ABTest.analyze`` and ``get_winner``).

loopml keeps the experiment, its exposures and events in the store, and its analysis checks the
sample ratio and ends in a verdict (ship / keep running / stop).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2_contingency

import loopml.abtest as ab

ab.create_experiment(
    "exp_001",
    variants={"A": 50, "B": 50},  # A is the control group, B the treatment
    control="A",
    metrics=["converted", {"name": "revenue", "kind": "continuous"}],
)

# Sticky assignment: the same user always gets the same variant (SHA-256 of "exp_001:<user>").
users = [f"user-{i}" for i in range(6_000)]
variants = {user: ab.assign("exp_001", user) for user in users}
assert all(ab.assign("exp_001", user) == variants[user] for user in users[:100])
print(f"user-42 -> {variants['user-42']} (bucket {ab.bucket('exp_001', 'user-42')} of 10000)")
print(
    f"assigned: A {sum(v == 'A' for v in variants.values())}, "
    f"B {sum(v == 'B' for v in variants.values())}"
)

# Simulated traffic: B converts at 13% against A's 10%; converted users spend ~50.
rng = np.random.default_rng(7)
ab.log_exposures("exp_001", [{"unit_id": u, "variant": v} for u, v in variants.items()])
events = []
for user, variant in variants.items():
    if rng.random() < (0.13 if variant == "B" else 0.10):
        events.append({"unit_id": user, "metric": "converted"})
        events.append({"unit_id": user, "metric": "revenue", "value": rng.gamma(5, 10)})
ab.log_events("exp_001", events)

result = ab.analyze_experiment("exp_001")
table = result.to_frame().set_index("metric")
converted = table.loc["converted"]
print(
    f"conversion: A {converted['control_mean']:.4f}, B {converted['mean']:.4f}, "
    f"lift {converted['relative']:+.1%}, p-value {converted['p_value']:.4g}"
)
print(f"sample ratio check p-value: {result.srm['p_value']:.3f}")
print(f"verdict: {result.verdict['decision']} ({result.verdict['reason']})")

# The same p-value as the seed's chi-square on the 2x2 table (without Yates' correction).
converted_users = {e["unit_id"] for e in events if e["metric"] == "converted"}
table_2x2 = [
    [
        sum(1 for u, v in variants.items() if v == group and u in converted_users),
        sum(1 for u, v in variants.items() if v == group and u not in converted_users),
    ]
    for group in ("A", "B")
]
print(f"scipy chi2_contingency p-value: {chi2_contingency(table_2x2, correction=False)[1]:.4g}")

bayes = ab.analyze_experiment("exp_001", method="bayesian").to_frame().set_index("metric")
print(f"bayesian: P(B beats A on conversion) = {bayes.loc['converted', 'prob_beat_control']:.3f}")
