"""The demo's world: a subscription service whose customers sign up, use the product every day,
open support tickets and cancel — simulated, seeded, with a change of behaviour part-way.

Everything is generated here, nothing is downloaded. ``simulate`` draws the whole timeline at
once (vectorised over customers × days); the demo then *lands* it in two parts, as a data
platform would receive it: the history up to ``CUTOFF_DAY`` first, the rest (which holds the
shift) later. Days count from ``World.start``, the UTC midnight ``DAYS`` days before the end.

How churn works, so that the features carry signal: each customer has a latent engagement; the
daily hazard of cancelling grows as engagement falls and as the price grows; a customer who is
about to cancel uses the product less and less in the last three weeks and opens more tickets.
From ``SHIFT_DAY`` a redesigned app halves the number of sessions (each one longer) and a
competitor's cheaper offer makes customers on dear plans leave far more often: the inputs drift,
the old model's accuracy drops, and a model trained on the recent weeks does better.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CUTOFF_DAY",
    "DAYS",
    "FEATURES",
    "HORIZON_DAYS",
    "SHIFT_DAY",
    "World",
    "activity_features",
    "feature_definitions",
    "label_rows",
    "read_landed",
    "simulate",
    "training_frame",
    "write_landing",
]

DAYS = 238  # the timeline: day 0 .. DAYS-1, ending yesterday
SHIFT_DAY = 168  # behaviour changes from this day on
CUTOFF_DAY = 147  # the first landing holds days before this one
HORIZON_DAYS = 28  # the label: cancelled within this many days after the label time
FEATURES = (
    "plan_tier",
    "monthly_charge",
    "tenure_days",
    "sessions_7d",
    "sessions_28d",
    "minutes_7d",
    "tickets_28d",
    "days_since_last_session",
)
_PLAN_PRICE = np.array([29.0, 59.0, 99.0])
_DECLINE_DAYS = 21  # how long usage fades before a cancellation
_MIN_TENURE_DAYS = 7  # label rows need a week of history


@dataclass(frozen=True)
class World:
    """The simulated timeline: customers, their daily activity events, their cancellations."""

    start: pd.Timestamp  # UTC midnight of day 0
    customers: pd.DataFrame  # customer_id, signup_at, plan_tier, monthly_charge
    events: pd.DataFrame  # customer_id, event_timestamp, sessions, minutes, tickets (daily)
    cancellations: pd.DataFrame  # customer_id, churned_at

    def at(self, day: float) -> pd.Timestamp:
        """The time of a day of the timeline (midnight UTC)."""
        return self.start + pd.Timedelta(days=day)


def simulate(*, n_customers: int = 2000, seed: int = 7, end: pd.Timestamp | None = None) -> World:
    """Draw the whole timeline; the same seed gives the same data (only ``end`` moves it)."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp.now(tz="UTC").floor("D") if end is None else end
    start = end - pd.Timedelta(days=DAYS)
    n = n_customers
    ids = np.arange(10_001, 10_001 + n)
    signup = rng.integers(-400, DAYS - 30, n)
    tier = rng.choice(3, size=n, p=[0.45, 0.35, 0.20])
    charge = np.round(_PLAN_PRICE[tier] * rng.uniform(0.8, 1.2, n), 2)
    engagement = rng.normal(0.0, 1.0, n)

    day = np.arange(DAYS)
    regime = (day >= SHIFT_DAY).astype(int)  # 0 before the shift, 1 after
    logit = (-5.3 - 0.9 * engagement + 0.012 * (charge - 50))[:, None] + np.zeros(DAYS)
    competitor = (charge > 55)[:, None] & (regime[None, :] == 1)  # a cheaper offer elsewhere
    logit = logit + 2.0 * competitor
    hazard = 1 / (1 + np.exp(-logit))
    alive_from = np.maximum(signup, 0)
    exposed = day[None, :] >= alive_from[:, None]
    cumulative = np.cumsum(np.where(exposed, hazard, 0.0), axis=1)
    threshold = rng.exponential(1.0, n)
    crossed = cumulative >= threshold[:, None]
    churn_day = np.where(crossed.any(axis=1), crossed.argmax(axis=1), DAYS + 10_000)

    active = exposed & (day[None, :] < churn_day[:, None])
    to_churn = churn_day[:, None] - day[None, :]
    fading = (to_churn > 0) & (to_churn <= _DECLINE_DAYS)
    fade = np.where(fading, 0.15 + 0.85 * to_churn / _DECLINE_DAYS, 1.0)
    rate = np.exp(0.3 + 0.5 * engagement)[:, None] * fade * np.where(regime == 1, 0.5, 1.0)
    sessions = rng.poisson(rate)
    minutes_per = np.where(regime == 1, 19.0, 11.0)
    minutes = np.round(rng.gamma(2.0 * sessions + 1e-9, minutes_per / 2.0), 1)
    minutes[sessions == 0] = 0.0
    tickets = rng.poisson(0.02 + 0.15 * fading + 0.02 * regime[None, :])

    rows, cols = np.nonzero(active)
    events = pd.DataFrame(
        {
            "customer_id": ids[rows],
            "event_timestamp": start + pd.to_timedelta(cols, unit="D") + pd.Timedelta(hours=20),
            "sessions": sessions[rows, cols].astype("int64"),
            "minutes": minutes[rows, cols],
            "tickets": tickets[rows, cols].astype("int64"),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_at": start + pd.to_timedelta(signup, unit="D"),
            "plan_tier": tier.astype("int64"),
            "monthly_charge": charge,
        }
    )
    gone = churn_day < DAYS
    cancellations = pd.DataFrame(
        {
            "customer_id": ids[gone],
            "churned_at": start
            + pd.to_timedelta(churn_day[gone], unit="D")
            + pd.Timedelta(hours=12),
        }
    )
    return World(start, customers, events, cancellations)


def activity_features(
    events: pd.DataFrame, customers: pd.DataFrame, start: pd.Timestamp
) -> pd.DataFrame:
    """Daily activity features from the daily events, one row per customer and active day,
    stamped at 23:00 of that day (when a nightly job would compute them)."""
    ids, row = np.unique(events["customer_id"].to_numpy(), return_inverse=True)
    col = ((events["event_timestamp"] - start) // pd.Timedelta(days=1)).to_numpy()
    width = int(col.max()) + 1 if len(col) else 0
    shape = (len(ids), width)

    def dense(name: str) -> np.ndarray:
        out = np.zeros(shape)
        out[row, col] = events[name].to_numpy()
        return out

    def rolling(values: np.ndarray, days: int) -> np.ndarray:
        total = np.cumsum(values, axis=1)
        total[:, days:] -= total[:, :-days].copy()
        return total

    sessions = dense("sessions")
    seen = np.full(shape, -1)
    day = np.broadcast_to(np.arange(width), shape)
    seen[sessions > 0] = day[sessions > 0]
    last = np.maximum.accumulate(seen, axis=1)
    since = np.where(last >= 0, day - last, 30)
    signup = customers.set_index("customer_id")["signup_at"].reindex(ids)
    signup_day = ((signup - start) // pd.Timedelta(days=1)).to_numpy()
    return pd.DataFrame(
        {
            "customer_id": ids[row],
            "event_timestamp": start + pd.to_timedelta(col, unit="D") + pd.Timedelta(hours=23),
            "tenure_days": (col - signup_day[row]).astype("int64"),
            "sessions_7d": rolling(sessions, 7)[row, col].astype("int64"),
            "sessions_28d": rolling(sessions, 28)[row, col].astype("int64"),
            "minutes_7d": np.round(rolling(dense("minutes"), 7)[row, col], 1),
            "tickets_28d": rolling(dense("tickets"), 28)[row, col].astype("int64"),
            "days_since_last_session": np.minimum(since[row, col], 30).astype("int64"),
        }
    )


def label_rows(
    customers: pd.DataFrame,
    cancellations: pd.DataFrame,
    times: Sequence[pd.Timestamp],
    *,
    horizon_days: int = HORIZON_DAYS,
) -> pd.DataFrame:
    """Entity rows for a training set: every customer active at each label time (with a week
    of history), and ``churned`` = 1 when they cancelled within ``horizon_days`` after it."""
    churned_at = customers["customer_id"].map(cancellations.set_index("customer_id")["churned_at"])
    frames = []
    for t in times:
        active = (customers["signup_at"] <= t - pd.Timedelta(days=_MIN_TENURE_DAYS)) & ~(
            churned_at <= t
        )
        soon = (churned_at > t) & (churned_at <= t + pd.Timedelta(days=horizon_days))
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": customers.loc[active, "customer_id"].to_numpy(),
                    "event_timestamp": t,
                    "churned": soon[active].astype("int64").to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_landing(world: World, root: Path, *, part: int, days: tuple[int, int]) -> dict[str, int]:
    """Write the data that arrives for ``days`` [first, last) as part ``part`` of each source:
    ``customers.parquet`` (with the first part), ``activity/part-N.parquet`` (the daily
    features), ``events/part-N.parquet`` and ``cancellations/part-N.parquet``. Returns the
    rows written per source."""
    lo, hi = world.at(days[0]), world.at(days[1])
    events = world.events[
        (world.events["event_timestamp"] >= lo) & (world.events["event_timestamp"] < hi)
    ]
    everything = world.events[world.events["event_timestamp"] < hi]
    features = activity_features(everything, world.customers, world.start)
    features = features[features["event_timestamp"] >= lo]
    gone = world.cancellations[
        (world.cancellations["churned_at"] >= lo) & (world.cancellations["churned_at"] < hi)
    ]
    written = {}
    for name, frame in (("events", events), ("activity", features), ("cancellations", gone)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(folder / f"part-{part:03d}.parquet", index=False)
        written[name] = len(frame)
    if part == 0:
        world.customers.to_parquet(root / "customers.parquet", index=False)
        written["customers"] = len(world.customers)
    return written


def read_landed(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customers and every cancellation landed so far (what labels are built from)."""
    customers = pd.read_parquet(root / "customers.parquet")
    cancellations = pd.read_parquet(root / "cancellations")
    return customers, cancellations


def feature_definitions(root: Path, prefix: str) -> dict[str, Any]:
    """The feature repository over the landed files: the ``customer`` entity, a profile view
    (plan and price, from the sign-up), a daily activity view (ttl two days: a customer whose
    nightly row is missing gets nulls, not stale values) and the service the model reads."""
    from loopml.features import (
        Entity,
        FeatureService,
        FeatureView,
        Field,
        FileSource,
        Float64,
        Int64,
    )

    customer = Entity(name="customer", join_keys=["customer_id"], description="a subscriber")
    profile = FeatureView(
        name=f"{prefix}_profile",
        entities=[customer],
        ttl=dt.timedelta(days=3650),
        schema=[Field(name="plan_tier", dtype=Int64), Field(name="monthly_charge", dtype=Float64)],
        source=FileSource(path=str(root / "customers.parquet"), timestamp_field="signup_at"),
        description="plan and monthly price, as of sign-up",
    )
    activity = FeatureView(
        name=f"{prefix}_activity",
        entities=[customer],
        ttl=dt.timedelta(days=2),
        schema=[
            Field(name="tenure_days", dtype=Int64),
            Field(name="sessions_7d", dtype=Int64),
            Field(name="sessions_28d", dtype=Int64),
            Field(name="minutes_7d", dtype=Float64),
            Field(name="tickets_28d", dtype=Int64),
            Field(name="days_since_last_session", dtype=Int64),
        ],
        source=FileSource(path=str(root / "activity"), timestamp_field="event_timestamp"),
        description="rolling usage and support figures, computed nightly from the events",
    )
    service = FeatureService(name=f"{prefix}_model", features=[profile, activity])
    return {"entity": customer, "profile": profile, "activity": activity, "service": service}


def training_frame(
    store: Any,
    service: str,
    customers: pd.DataFrame,
    cancellations: pd.DataFrame,
    times: Sequence[pd.Timestamp],
) -> Any:
    """The point-in-time join of the label rows at ``times`` with the service's features:
    a ``RetrievalJob`` (``.to_df()``, ``.to_dataset(name)``)."""
    entity_df = label_rows(customers, cancellations, times)
    return store.get_historical_features(entity_df, service)
