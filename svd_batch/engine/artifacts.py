"""Compiled artifacts on disk: what a key covers, where an artifact lives, and proof that a stored one is whole.

Layout under the store's root (`<compile_cache_dir>/artifacts`):
    <key>/artifact.bin   the serialized compiled function (torch's ahead-of-time `aot_compile`)
    <key>/meta.json      written last, so its presence means the artifact is complete: the key's fields, the
                         artifact's size and sha256, how long the build took
    <key>.lock           held by the process building that key (several processes may want it at once)
    <key>.log            that build's output, for when it fails
Nothing here imports torch, so dry runs and `hardware=auto` can look artifacts up for free.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from svd_batch.engine.hardware import FastPaths

log = logging.getLogger(__name__)

ARTIFACT_NAME = "artifact.bin"
META_NAME = "meta.json"
ENGINE_DIR = Path(__file__).resolve().parent
# engine modules no compiled graph runs through (chaining segments between calls, describing the environment): a
# change to them must not make every user's cached graphs be built again
UNTRACED = ("segments.py", "environment.py")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


@functools.cache
def engine_code_hash() -> str:
    """The engine's source: compiled graphs are traced through it, so any change to it rebuilds them."""
    digest = hashlib.sha256()
    for path in sorted(p for p in ENGINE_DIR.glob("*.py") if p.name not in UNTRACED):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def environment_fields(device_name: str) -> dict[str, str]:
    """What, besides the model and the call, decides the generated code."""
    return {
        "device": device_name,
        "torch": package_version("torch"),
        "diffusers": package_version("diffusers"),
        "triton": package_version("triton"),
        "svd_batch_engine": engine_code_hash(),
    }


def unet_part_name(index: int, parts: int) -> str:
    """The stored name of part `index` (from 0) of a UNet compiled in `parts` (svd_batch.engine.unet_parts)."""
    return f"unet_part{index + 1}of{parts}"


def unet_graph_names(parts: int) -> list[str]:
    """What a whole UNet compiled as `parts` graphs is stored as: "unet" itself, or each of its parts."""
    return [unet_part_name(index, parts) for index in range(parts)] if parts > 1 else ["unet"]


def unet_graph_choices(parts: int) -> list[list[str]]:
    """The ways a run may find the whole UNet stored, the one it prefers first: as one graph, or (where a cold start
    builds it in `parts` > 1 parts first) as those parts."""
    return [["unet"], unet_graph_names(parts)] if parts > 1 else [["unet"]]


def attention_fields(paths: FastPaths) -> dict[str, str]:
    """FlashAttention-4's installed version, for a UNet whose fast paths ask for it: where it is missing the graph is
    built with torch's attention instead, which is not the graph to load once it is installed."""
    return {"flash_attn_4": package_version("flash-attn-4")} if paths.uses_flash_attention_4 else {}


def artifact_key(function: str, fields: dict[str, Any]) -> str:
    """`<function>-<hash of every field>`: a changed field is a different artifact, built anew."""
    payload = json.dumps({"function": function, **fields}, sort_keys=True, default=str)
    return f"{function}-{hashlib.sha256(payload.encode()).hexdigest()[:20]}"


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = root

    def folder(self, key: str) -> Path:
        return self.root / key

    def log_path(self, key: str) -> Path:
        return self.root / f"{key}.log"

    def meta(self, key: str) -> dict[str, Any] | None:
        """The metadata of a complete artifact, or None (missing, or a build that never finished)."""
        try:
            meta = json.loads((self.folder(key) / META_NAME).read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("key") == key else None

    def read(self, key: str) -> bytes | None:
        """The artifact's bytes if they are whole (size and sha256 match its metadata). A partial or corrupt
        artifact is removed, so the caller builds it again instead of loading it."""
        meta = self.meta(key)
        if meta is None:
            return None
        try:
            data = (self.folder(key) / ARTIFACT_NAME).read_bytes()
        except OSError:
            data = b""
        if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            log.warning("compiled artifact %s is incomplete or corrupt: removing it, it will be built again", key)
            self.remove(key)
            return None
        return data

    def write(self, key: str, data: bytes, meta: dict[str, Any]) -> dict[str, Any]:
        """Stores an artifact atomically: bytes first, then the metadata that vouches for them."""
        folder = self.folder(key)
        staging = self.root / f".{key}.{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        meta = {**meta, "key": key, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        _write_synced(staging / ARTIFACT_NAME, data)
        _write_synced(staging / META_NAME, json.dumps(meta, indent=1, default=str).encode())
        if folder.exists():
            shutil.rmtree(folder)  # a corrupt one: only the builder holding the lock replaces it
        os.replace(staging, folder)
        return meta

    def remove(self, key: str) -> None:
        shutil.rmtree(self.folder(key), ignore_errors=True)

    @contextlib.contextmanager
    def building(self, key: str) -> Iterator[None]:
        """Held while building `key`: a second builder of the same key waits here, then finds it built."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{key}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def find(self, function: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
        """Metadata of the complete artifacts of `function` whose fields include all of `fields`."""
        found = []
        for meta_path in sorted(self.root.glob(f"{function}-*/{META_NAME}")):
            meta = self.meta(meta_path.parent.name)
            if meta and meta.get("function") == function and all(meta.get(k) == v for k, v in fields.items()):
                found.append(meta)
        return found


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
