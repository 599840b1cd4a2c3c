"""Several processes on one plan (`accelerate launch --num_processes N run.py ...`, torchrun, or `shard.*` array
tasks): each is a worker that starts with its own balanced share of the plan and then helps with the others' (which
worker renders a job is settled by per-job claims, svd_batch.batch.claims); each uses its own GPU."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

from svd_batch.batch.plan import Job
from svd_batch.config import ConfigError, ShardConfig


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1
    local_index: int = 0
    state: object | None = None  # accelerate's PartialState when several processes run

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def wait_for_everyone(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    @contextmanager
    def main_first(self):
        """Process 0 runs the block first (building caches, e.g. the tiny model: under a process group, transformers
        writes weights from rank 0 only), the others after it."""
        if self.state is None:
            yield
        else:
            with self.state.main_process_first():
                yield

    def from_main(self, value):
        """Process 0's value, in every process (e.g. the output folder, whose default is a per-process timestamp)."""
        if self.state is None:
            return value
        import torch.distributed as dist

        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]


def current_shard(configured: ShardConfig | None = None) -> Shard:
    """This process's place among the launched ones (accelerate/torchrun), or the configured share of an array job;
    a plain `python run.py` is shard 0 of 1."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if configured is not None and configured.count > 1:
        if launched:
            raise ConfigError(
                "shard.count > 1 splits the plan between independent runs; with accelerate/torchrun the "
                "processes split it themselves: leave shard unset"
            )
        return Shard(configured.index, configured.count)
    if not launched:
        return Shard()
    from accelerate import PartialState  # launched runs only: planning and dry runs stay free of torch

    from svd_batch.engine.accelerator import current_kind

    state = PartialState(cpu=current_kind() is None)  # gloo on CPUs, the accelerator's backend (NCCL, HCCL) on it
    return Shard(state.process_index, state.num_processes, state.local_process_index, state)


def job_cost(job: Job) -> int:
    p = job.params
    return p.num_frames * p.height * p.width * p.num_inference_steps


def shard_jobs(jobs: list[Job], shard: Shard) -> list[Job]:
    """Longest-processing-time-first over the job costs, so shards finish together even when jobs differ in size.
    It depends on the plan alone, so every process and every later run agrees on who owns a job. Jobs keep their
    plan order within a shard."""
    if shard.count == 1:
        return jobs
    loads = [0] * shard.count
    owner: dict[str, int] = {}
    for job in sorted(jobs, key=lambda j: (-job_cost(j), j.job_id)):
        target = loads.index(min(loads))
        owner[job.job_id] = target
        loads[target] += job_cost(job)
    return [job for job in jobs if owner[job.job_id] == shard.index]


def preferred_order(jobs: list[Job], shard: Shard) -> list[Job]:
    """This shard's share first, then the others' jobs, which it takes when their own worker is slower or gone."""
    if shard.count == 1:
        return jobs
    mine = shard_jobs(jobs, shard)
    own = {job.job_id for job in mine}
    return mine + [job for job in jobs if job.job_id not in own]
