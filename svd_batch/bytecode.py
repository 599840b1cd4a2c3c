"""Python's compiled bytecode kept under svd-batch's cache folder where the environment keeps none.

A run imports a few thousand Python modules (torch, its compiler, diffusers, transformers). pip writes their
bytecode when it installs them and Python writes what is missing on the first import, so most machines compile them
once. An environment that forbids writing it (PYTHONDONTWRITEBYTECODE=1, common in container images, or a read-only
site-packages) compiles them again in every process: on the H200 box, 11 of the 47 sampled seconds of a warm start's
main thread, and ~3 s of its 30 s to the first video (benchmarks/h200-2026-12-02b). There svd-batch points Python's
own PYTHONPYCACHEPREFIX at `<cache_dir>/pycache`, for this process and the processes it starts (the compiled-graph
builders), so only the first run compiles.

Only the standard library is imported here: this runs before torch is imported.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)
PROBE = "torch"  # the largest package a run imports: whether its bytecode is kept stands for the rest


def keep_bytecode(cache_dir: str | Path, probe: str = PROBE) -> Path | None:
    """Points Python's bytecode cache at `<cache_dir>/pycache` when `probe`'s bytecode is neither installed nor
    writable beside its source; returns that folder, or None when nothing needed changing (bytecode present, Python
    able to write it there, or the user's own PYTHONPYCACHEPREFIX set)."""
    if sys.pycache_prefix is not None:
        return None
    try:
        spec = importlib.util.find_spec(probe)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.has_location or not spec.cached:
        return None
    cached = Path(spec.cached)
    if cached.exists() or (not sys.dont_write_bytecode and _writable(cached.parent)):
        return None
    prefix = Path(cache_dir).expanduser() / "pycache"
    try:
        prefix.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    sys.pycache_prefix = str(prefix)
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = str(prefix)  # inherited by the builder processes
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    log.debug("no bytecode kept beside %s's source: caching it under %s", probe, prefix)
    return prefix


def _writable(folder: Path) -> bool:
    """Whether Python could create `folder` (a __pycache__) or write into it."""
    existing = folder if folder.exists() else folder.parent
    return os.access(existing, os.W_OK)
