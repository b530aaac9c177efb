"""``/api/v1/datasets`` (datasets, versions, files, aliases, lineage, diff, validation) and
``/api/v1/dataset-blobs`` (the content-addressed blobs behind them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

import loopml.data as ld
from loopml.data import DatasetStore, FileEntry
from loopml.errors import InvalidInput
from loopml.server._tracking_api import BINARY_RESPONSE, JsonRoute, scoped

router = APIRouter(prefix="/api/v1", tags=["datasets"], route_class=JsonRoute)

# A batch holds many small files or one chunk (16 MiB by default): far below this.
MAX_BLOB_BATCH_BYTES = 96 << 20
MAX_DIGESTS = 10_000


async def datasets_for(request: Request) -> DatasetStore:
    """The dataset store scoped to the request's workspace."""
    return scoped(request.app.state.dataset_store, request)


Store = Annotated[DatasetStore, Depends(datasets_for)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateVersion(_Body):
    files: list[dict[str, Any]] = Field(min_length=1)
    mode: str = "copy"
    source_uri: str | None = None
    chunk_size: StrictInt
    num_rows: StrictInt | None = None
    profile: dict[str, Any] | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = None
    context: str = ""
    user_id: str | None = None


class UpdateBody(_Body):
    description: str | None = None
    tags: dict[str, str | None] | None = None


class AliasBody(_Body):
    version: StrictInt


class RunLink(_Body):
    run_id: str
    context: str = ""


class Digests(_Body):
    digests: list[str] = Field(max_length=MAX_DIGESTS)


class GcBody(_Body):
    grace_seconds: StrictFloat | StrictInt = 3600
    dry_run: bool = False


class ValidateBody(_Body):
    rules: dict[str, Any] | str
    max_examples: StrictInt = Field(default=5, ge=0, le=100)


def _version(ref: str) -> int | str | None:
    if ref == "latest":
        return None
    return int(ref) if ref.isascii() and ref.isdigit() and len(ref) <= 9 else ref


def _number(store: DatasetStore, name: str, ref: str) -> int:
    return store.get_version(name, _version(ref)).version


# -- datasets ----------------------------------------------------------------------------------
@router.get("/datasets")
def list_datasets(store: Store) -> dict[str, Any]:
    """Every dataset of the workspace."""
    return {"datasets": [d.to_dict() for d in store.list_datasets()]}


@router.get("/datasets/{name}")
def get_dataset(name: str, store: Store) -> dict[str, Any]:
    """One dataset with its latest version and aliases."""
    return {"dataset": store.get_dataset(name).to_dict()}


@router.patch("/datasets/{name}")
def update_dataset(name: str, body: UpdateBody, store: Store) -> dict[str, Any]:
    """Set the description or merge tags (a null value deletes a tag)."""
    out = store.update_dataset(name, description=body.description, tags=body.tags)  # type: ignore[arg-type]
    return {"dataset": out.to_dict()}


@router.delete("/datasets/{name}")
def delete_dataset(name: str, store: Store) -> dict[str, Any]:
    """Delete a dataset and its versions (blobs wait for garbage collection)."""
    store.delete_dataset(name)
    return {}


# -- versions ----------------------------------------------------------------------------------
@router.post("/datasets/{name}/versions")
def create_version(name: str, body: CreateVersion, store: Store) -> dict[str, Any]:
    """Record a version whose blobs are stored; an existing version with the same content
    is returned with ``created: false``."""
    files = [FileEntry.from_dict(f) for f in body.files]
    version, created = store.create_version(
        name,
        files,
        mode=body.mode,
        source_uri=body.source_uri,
        chunk_size=body.chunk_size,
        num_rows=body.num_rows,
        profile=body.profile,
        description=body.description,
        tags=body.tags,
        run_id=body.run_id,
        context=body.context,
        user_id=body.user_id,
    )
    return {"version": version.to_dict(), "created": created}


@router.get("/datasets/{name}/find")
def find_version(name: str, content_hash: str, store: Store) -> dict[str, Any]:
    """The version of ``name`` holding this content, or null."""
    found = store.find_version(name, content_hash)
    return {"version": None if found is None else found.to_dict()}


@router.get("/datasets/{name}/versions")
def list_versions(name: str, store: Store) -> dict[str, Any]:
    """The versions of a dataset, newest first."""
    return {"versions": [v.to_dict() for v in store.list_versions(name)]}


@router.get("/datasets/{name}/versions/{ref}")
def get_version(name: str, ref: str, store: Store) -> dict[str, Any]:
    """A version by number, alias or ``latest``."""
    return {"version": store.get_version(name, _version(ref)).to_dict()}


@router.get("/datasets/{name}/versions/{ref}/files")
def list_files(name: str, ref: str, store: Store) -> dict[str, Any]:
    """The files of a version: path, size, digest (and chunk digests of large files)."""
    return {"files": [f.to_dict() for f in store.list_files(name, _number(store, name, ref))]}


@router.patch("/datasets/{name}/versions/{ref}")
def update_version(name: str, ref: str, body: UpdateBody, store: Store) -> dict[str, Any]:
    """Set a version's description or merge its tags."""
    out = store.update_version(
        name, _number(store, name, ref), description=body.description, tags=body.tags
    )
    return {"version": out.to_dict()}


@router.delete("/datasets/{name}/versions/{ref}")
def delete_version(name: str, ref: str, store: Store) -> dict[str, Any]:
    """Delete a version and its aliases."""
    store.delete_version(name, _number(store, name, ref))
    return {}


@router.post("/datasets/{name}/versions/{ref}/runs")
def link_run(name: str, ref: str, body: RunLink, store: Store) -> dict[str, Any]:
    """Record that a run used this version."""
    store.link_run(name, _number(store, name, ref), body.run_id, body.context)
    return {}


@router.put("/datasets/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasBody, store: Store) -> dict[str, Any]:
    """Point an alias at a version."""
    store.set_alias(name, alias, body.version)
    return {}


@router.delete("/datasets/{name}/aliases/{alias}")
def delete_alias(name: str, alias: str, store: Store) -> dict[str, Any]:
    """Remove an alias."""
    store.delete_alias(name, alias)
    return {}


@router.get("/datasets/{name}/diff")
def diff(name: str, a: str, b: str, store: Store) -> dict[str, Any]:
    """Files added, removed and changed, rows, schema and drift between versions ``a``, ``b``."""
    return {"diff": ld.diff(f"{name}@{a}", f"{name}@{b}", store=store)}


@router.post("/datasets/{name}/versions/{ref}/validate")
def validate(name: str, ref: str, body: ValidateBody, store: Store) -> dict[str, Any]:
    """Check a tabular version against rules (the YAML form as text or an object)."""
    rules = ld.Rules.from_dict(_rules_object(body.rules))
    if store.get_version(name, _version(ref)).mode == "reference":
        raise InvalidInput(
            "a reference-mode version is read where its data lives: validate it with the SDK"
            " or CLI on a machine that can read it (the server reads no client-named location)"
        )
    result = ld.validate_dataset(
        f"{name}@{ref}", rules, max_examples=body.max_examples, store=store
    )
    return {"result": result.to_dict()}


def _rules_object(rules: dict[str, Any] | str) -> dict[str, Any]:
    """Rules as an object; YAML text is parsed here, never taken as a path on the server."""
    if isinstance(rules, dict):
        return rules
    import yaml

    try:
        parsed = yaml.safe_load(rules)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"rules: not valid YAML: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidInput("rules: the YAML must be a mapping (min_rows:, columns: ...)")
    return parsed


@router.get("/dataset-versions")
def versions_for_run(run_id: str, store: Store) -> dict[str, Any]:
    """The dataset versions a run used or produced."""
    return {"versions": [v.to_dict() for v in store.versions_for_run(run_id)]}


# -- blobs -------------------------------------------------------------------------------------
@router.post("/dataset-blobs/missing")
def missing_blobs(body: Digests, store: Store) -> dict[str, Any]:
    """Which of these digests the store lacks (the rest are kept from garbage collection)."""
    return {"missing": sorted(store.missing_blobs(body.digests))}


@router.post("/dataset-blobs", status_code=204)
async def put_blobs(request: Request, store: Store) -> Response:
    """Store a batch of blobs (``encode_blobs`` framing), each verified against its digest."""
    body = await _read_limited(request)
    blobs = ld.decode_blobs(body)
    await run_in_threadpool(store.put_blobs, blobs)
    return Response(status_code=204)


@router.post("/dataset-blobs/fetch", response_class=Response, responses=BINARY_RESPONSE)
async def fetch_blobs(body: Digests, store: Store) -> Response:
    """The bytes of these blobs, verified, in ``encode_blobs`` framing."""

    def read() -> bytes:
        total, out = 0, []
        for digest, data in store.get_blobs(body.digests):
            total += len(data)
            if total > MAX_BLOB_BATCH_BYTES:
                raise InvalidInput(f"ask for at most {MAX_BLOB_BATCH_BYTES >> 20} MiB of blobs")
            out.append((digest, data))
        return ld.encode_blobs(out)

    return Response(await run_in_threadpool(read), media_type="application/octet-stream")


@router.post("/dataset-blobs/gc")
def collect_garbage(body: GcBody, store: Store) -> dict[str, Any]:
    """Delete unreferenced blobs older than the grace period (or count them on a dry run)."""
    report = store.collect_garbage(grace_seconds=float(body.grace_seconds), dry_run=body.dry_run)
    return {"report": report.to_dict()}


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BLOB_BATCH_BYTES:
        raise InvalidInput(f"a blob batch may hold at most {MAX_BLOB_BATCH_BYTES >> 20} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BLOB_BATCH_BYTES:
            raise InvalidInput(f"a blob batch may hold at most {MAX_BLOB_BATCH_BYTES >> 20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)
