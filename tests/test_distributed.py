"""Several processes on one plan: balanced shards, every job exactly once in one merged index."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from svd_batch.batch.distributed import Shard, job_cost, preferred_order, shard_jobs
from svd_batch.batch.plan import Job
from svd_batch.config import SampleParams
from tests.conftest import REPO


def jobs_of(frames: list[int]) -> list[Job]:
    return [Job(f"j{i}", "x", "x.png", SampleParams(num_frames=f, height=64, width=64, num_inference_steps=1), "m")
            for i, f in enumerate(frames)]  # fmt: skip


def test_shards_cover_every_job_once_and_balance_unequal_costs():
    jobs = jobs_of([25, 25, 14, 14, 14, 8, 8, 4])
    shards = [shard_jobs(jobs, Shard(i, 3)) for i in range(3)]
    assert sorted(j.job_id for s in shards for j in s) == sorted(j.job_id for j in jobs)
    loads = [sum(job_cost(j) for j in s) for s in shards]
    assert max(loads) - min(loads) <= max(job_cost(j) for j in jobs) / 2  # no shard gets all the long jobs
    assert shard_jobs(jobs, Shard()) == jobs
    assert [j.job_id for j in shards[0]] == sorted((j.job_id for j in shards[0]), key=lambda i: int(i[1:]))


def test_a_shard_prefers_its_own_share_then_helps_with_the_others():
    jobs = jobs_of([25, 14, 8, 4])
    for index in range(2):
        order = preferred_order(jobs, Shard(index, 2))
        own = shard_jobs(jobs, Shard(index, 2))
        assert order[: len(own)] == own and sorted(j.job_id for j in order) == sorted(j.job_id for j in jobs)
    assert preferred_order(jobs, Shard()) == jobs


def test_two_processes_render_every_job_exactly_once(cache_dir, tmp_path, two_images):
    out = tmp_path / "out"
    # torchrun sets the same process-group environment as `accelerate launch --multi_gpu`; gloo on CPUs
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29583",
         str(REPO / "run.py"), f"manifest={two_images}", f"output_dir={out}", "tracking.mode=offline",
         "sweep=none", "sweep.grid.seed=[1,2,3]", "sample.num_frames=4", "sample.num_inference_steps=2",
         "quality.enabled=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in result.stdout.splitlines() if "ERROR" in line]
    assert result.returncode == 0, errors or result.stderr[-3000:]
    index = pd.read_csv(out / "index.csv")
    assert len(index) == 6 and index.job_id.is_unique and set(index.status) == {"ok"}
    journals = sorted(p.read_text().count("\n") for p in (out / "journals").glob("*.jsonl"))
    assert journals[0] >= 1 and sum(journals) == 6  # each its own journal; its share first, then it helps the other
    assert len(list((out / "wandb").glob("offline-run-*"))) == 2  # one W&B run per process, one group
    assert (out / "index.html").is_file()


def test_shards_without_a_shared_folder_are_refused(cache_dir, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "run.py"), "shard.count=2", "tracking.mode=disabled"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and "set output_dir=PATH explicitly" in result.stdout + result.stderr
