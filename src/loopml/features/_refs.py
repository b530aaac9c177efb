"""Turning a feature list (``["view:feature", ...]`` or a feature service) into what to read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidInput, NotFound
from loopml.features._definitions import FeatureService
from loopml.features._odfv import input_names
from loopml.features._registry import Catalog

__all__ = ["Resolved", "resolve"]


@dataclass
class Resolved:
    """Features to return (in request order) and what must be read to compute them."""

    output: list[tuple[str, str]]  # (view or on-demand view, feature), request order
    views: dict[str, list[str]] = field(default_factory=dict)  # plain view -> features to read
    odfvs: dict[str, list[str]] = field(default_factory=dict)  # on-demand view -> its outputs
    request_fields: list[str] = field(default_factory=list)
    service: str | None = None

    def names(self, full_feature_names: bool) -> list[str]:
        """Output column names: ``feature`` or ``view__feature``."""
        if full_feature_names:
            return [f"{v}__{f}" for v, f in self.output]
        names = [f for _, f in self.output]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidInput(
                f"feature name {dup[0]!r} comes from more than one view: "
                "pass full_feature_names=True"
            )
        return names

    @property
    def all_views(self) -> list[str]:
        """Every view (plain and on-demand) involved, for lineage."""
        return list(self.views) + [v for v in self.odfvs if v not in self.views]


def _parse(ref: Any) -> tuple[str, str]:
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise InvalidInput(f"feature reference {ref!r} must look like 'view:feature'")
    view, name = ref.split(":")
    if not view or not name:
        raise InvalidInput(f"feature reference {ref!r} must look like 'view:feature'")
    return view, name


def resolve(catalog: Catalog, features: Sequence[str] | FeatureService | str) -> Resolved:
    """What ``features`` (refs, a service, or a service's name) stand for in the catalog."""
    service = None
    if isinstance(features, FeatureService):
        service = features.name
        features = catalog.service(features.name).features  # the registered one
        refs = [(p.view, f) for p in features for f in p.features]
    elif isinstance(features, str):
        if ":" in features:
            refs = [_parse(features)]
        else:
            service = features
            refs = [(p.view, f) for p in catalog.service(features).features for f in p.features]
    else:
        if isinstance(features, (bytes, dict)) or not isinstance(features, Sequence):
            raise InvalidInput("features must be a list of 'view:feature' or a feature service")
        refs = [_parse(r) for r in features]
    if not refs:
        raise InvalidInput("features must name at least one feature")
    dup = sorted({f"{v}:{f}" for v, f in refs if refs.count((v, f)) > 1})
    if dup:
        raise InvalidInput(f"feature {dup[0]!r} is requested twice")
    unknown: list[str] = []
    out = Resolved(output=list(refs), service=service)
    for view, name in refs:
        if view in catalog.views:
            if name not in catalog.views[view].feature_names:
                unknown.append(f"{view}:{name}")
            else:
                out.views.setdefault(view, [])
                if name not in out.views[view]:
                    out.views[view].append(name)
        elif view in catalog.odfvs:
            if name not in catalog.odfvs[view].feature_names:
                unknown.append(f"{view}:{name}")
            else:
                out.odfvs.setdefault(view, []).append(name)
        else:
            unknown.append(f"{view}:{name}")
    if unknown:
        raise InvalidInput(f"unknown features: {', '.join(unknown)}")
    for odfv_name in out.odfvs:
        feats, request = input_names(catalog.odfvs[odfv_name])
        for view, name in feats:
            if view not in catalog.views:
                raise NotFound(
                    f"on-demand feature view {odfv_name!r} reads feature view {view!r}, "
                    "which does not exist"
                )
            out.views.setdefault(view, [])
            if name not in out.views[view]:
                out.views[view].append(name)
        for r in request:
            if r not in out.request_fields:
                out.request_fields.append(r)
    return out
