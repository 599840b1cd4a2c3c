"""Planning and claims at scale, on the CPU machine (2 cores, local disk): what every worker pays before its first
job, and what per-job claim files cost the file system. Writes results.json and prints a markdown table.

python benchmarks/cpu-scale-2026-11-23/measure.py WORKDIR
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from svd_batch.batch.claims import Claims, WorkerInfo  # noqa: E402
from svd_batch.batch.runner import make_plan  # noqa: E402
from svd_batch.config import load_config  # noqa: E402

IMAGES = 10_000


def make_images(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(IMAGES):
        path = folder / f"{i:05d}.png"
        if not path.exists():  # 128x128 noise: ~49 KB a file, 0.5 GB in all
            Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(path, compress_level=0)
    manifest = folder / "manifest.csv"
    manifest.write_text("image\n" + "".join(f"{i:05d}.png\n" for i in range(IMAGES)))
    return manifest


def plan_seconds(manifest: Path, cache: Path) -> tuple[float, int]:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"manifest={manifest}", f"cache_dir={cache}", "sweep=none", "dry_run=true",
                                           "output_dir=/tmp/unused", "hardware=cpu"])  # fmt: skip
    config = load_config(cfg)
    started = time.perf_counter()
    jobs = make_plan(config).jobs
    return time.perf_counter() - started, len(jobs)


def drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def du_kib(folder: Path) -> int:
    return int(subprocess.run(["du", "-sk", str(folder)], capture_output=True, text=True).stdout.split()[0])


def main() -> None:
    work = Path(sys.argv[1])
    manifest = make_images(work / "images")
    total_mb = sum(p.stat().st_size for p in (work / "images").glob("*.png")) / 1e6
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    results: dict = {"images": IMAGES, "image_bytes_mb": round(total_mb, 1), "cpu_count": os.cpu_count()}

    results["page_cache_dropped"] = drop_page_cache()
    results["plan_first_s"], results["jobs"] = plan_seconds(manifest, cache)  # hashes every image
    results["plan_rerun_s"], _ = plan_seconds(manifest, cache)  # fingerprints from the cache
    (cache / "fingerprints.json").unlink()
    results["plan_no_cache_warm_files_s"], _ = plan_seconds(manifest, cache)  # hashing with the files in memory
    results["fingerprint_cache_kib"] = round((cache / "fingerprints.json").stat().st_size / 1024)

    # claims: one file per job, created by a worker, then the scans every worker makes
    folder = work / "claims-folder"
    shutil.rmtree(folder, ignore_errors=True)
    claims = Claims(folder, lease_s=180)
    claims.start()
    job_ids = [f"{i:016x}" for i in range(IMAGES)]
    started = time.perf_counter()
    for job_id in job_ids:
        claims.try_claim(job_id, lambda _: False)
    results["claim_10k_s"] = round(time.perf_counter() - started, 2)
    other = Claims(folder, lease_s=180, me=WorkerInfo("other", claims.me.host, os.getpid(), time.time()))
    started = time.perf_counter()
    free = other.unclaimed(job_ids)  # every claim read: all held by a live worker
    results["unclaimed_scan_10k_held_s"] = round(time.perf_counter() - started, 2)
    assert free == []
    claims.stop()
    started = time.perf_counter()
    free = other.unclaimed(job_ids)  # every holder gone: each claim read and its holder checked
    results["unclaimed_scan_10k_dead_s"] = round(time.perf_counter() - started, 2)
    assert len(free) == IMAGES
    results["claims_files"] = len(os.listdir(folder / "claims"))
    results["claims_dir_kib"] = du_kib(folder / "claims")

    for key, value in results.items():
        if isinstance(value, float):
            results[key] = round(value, 2)
    (Path(__file__).parent / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print("| measure | value |\n|---|---|")
    for key, value in results.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
