"""Content hashes of manifest images, cached by (path, size, modification time).

Every worker plans the whole sweep, and a job's id includes its image's content hash: with 100k images on a network
file system, hashing them all is the first cost of every run. The cache (a JSON file under `cache_dir`, shared by
workers and reruns) re-hashes only files whose size or modification time changed.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

from svd_batch.batch.plan import image_fingerprint

log = logging.getLogger(__name__)

CACHE_NAME = "fingerprints.json"


class FingerprintCache:
    def __init__(self, path: Path | None):
        """`path`: the cache file; None hashes every time (nothing is cached)."""
        self.path = path
        self.entries: dict[str, list] = {}  # absolute path -> [size, mtime_ns, fingerprint]
        self.changed = False
        if path is not None:
            try:
                self.entries = json.loads(path.read_text())
            except (OSError, ValueError):
                self.entries = {}  # none yet, or a file cut short: start over

    def __call__(self, image: str) -> str:
        """The image's fingerprint (svd_batch.batch.plan.image_fingerprint), from the cache when the file is as it
        was."""
        try:
            stat = os.stat(image)
        except (OSError, ValueError):
            return image_fingerprint(image)  # a URL or a missing file: nothing to cache
        known = self.entries.get(image)
        if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            return known[2]
        fingerprint = image_fingerprint(image)
        self.entries[image] = [stat.st_size, stat.st_mtime_ns, fingerprint]
        self.changed = True
        return fingerprint

    def save(self) -> None:
        """Writes the cache atomically if it learned anything (concurrent writers: the last complete one wins)."""
        if self.path is None or not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}")
            partial.write_text(json.dumps(self.entries))
            os.replace(partial, self.path)
            self.changed = False
        except OSError as exc:  # a read-only cache folder costs speed, not correctness
            log.warning("cannot save image fingerprints to %s: %s", self.path, exc)
