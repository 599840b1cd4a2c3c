"""Many workers, one folder: workers started at different times share the jobs, a killed one's job is taken over,
SIGKILL at any moment loses nothing and finishes nothing twice, a multirun is one result set."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from svd_batch.batch.loop import RENDER_LOG_ENV
from svd_batch.batch.records import JobRecord, JournalReader, OutputFolder, journal_line
from svd_batch.batch.runner import make_plan, run
from svd_batch.results.export import PARTIAL_PREFIX, read_frames
from tests.conftest import REPO, write_image
from tests.crash_worker import FRAMES, SIZE, planned_jobs


def journalled(out: Path) -> dict:
    return JournalReader(out).refresh() if out.exists() else {}


def renders(log: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in log.read_text().splitlines()] if log.exists() else []


# --- real workers: run.py on the tiny model -------------------------------------------------------------------------


def test_three_workers_started_apart_share_twelve_jobs_and_a_killed_ones_job_is_taken_over(cache_dir, tmp_path):
    data = tmp_path / "data"
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        write_image(data / f"{name}.png", (128, 128), seed=seed)
    manifest = data / "three.csv"
    manifest.write_text("image,id\na.png,a\nb.png,b\nc.png,c\n")
    out, log = tmp_path / "out", tmp_path / "renders.log"
    args = [sys.executable, str(REPO / "run.py"), f"manifest={manifest}", f"output_dir={out}", "tracking.mode=disabled",
            "sweep=none", "sweep.grid.seed=[1,2]", "sweep.grid.motion_bucket_id=[60,120]", "sample.num_frames=4",
            "sample.num_inference_steps=2", "report.grids=false", "quality.enabled=false"]  # fmt: skip
    env = {**os.environ, RENDER_LOG_ENV: str(log)}
    workers = []
    for _ in range(3):
        workers.append(subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        time.sleep(1.5)
    victim = workers[1]
    deadline = time.time() + 180
    while not any(worker == str(victim.pid) or f"-{victim.pid}-" in worker for _, worker in renders(log)):
        assert time.time() < deadline and victim.poll() is None, "the second worker never rendered"
        time.sleep(0.05)
    time.sleep(0.2)  # into its next job
    victim.send_signal(signal.SIGKILL)
    for worker in workers:
        assert worker.wait(timeout=300) in (0, -signal.SIGKILL), worker.stderr.read()[-3000:]

    rerun = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    index = pd.read_csv(out / "index.csv")
    assert len(index) == 12 and index.job_id.is_unique and set(index.status) == {"ok"}
    assert index.worker.nunique() >= 2  # the jobs were shared
    for output in index.output:
        assert read_frames(out / output).shape == (4, 128, 128, 3)
    # a job is rendered twice only when the killed worker rendered it and never journalled it
    counts = Counter(job for job, _ in renders(log))
    killed = {job for job, worker in renders(log) if f"-{victim.pid}-" in worker}
    twice = {job for job, n in counts.items() if n > 1}
    assert twice <= killed and not twice & set(index[index.worker.str.contains(f"-{victim.pid}-")].job_id)
    assert set(counts) == set(index.job_id)


# --- the crash loop: SIGKILL at random moments, also inside renames and journal appends ------------------------------


def check_folder(out: Path, expected: set[str]) -> None:
    """After a clean resume: exactly the expected jobs, once each, ok, decodable; no temporary file left and none
    under a final name."""
    index = pd.read_csv(out / "index.csv")
    assert set(index.job_id) == expected and index.job_id.is_unique and set(index.status) == {"ok"}
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(f"{j}.mp4" for j in expected)
    assert sorted(p.name for p in (out / "posters").iterdir()) == sorted(f"{j}.jpg" for j in expected)
    for job in expected:
        assert read_frames(out / "videos" / f"{job}.mp4").shape == (FRAMES, SIZE, SIZE, 3)
    assert not [p for p in out.rglob(f"{PARTIAL_PREFIX}*")]


def crash_cycles(tmp_path: Path, seed: int, kills_wanted: int) -> int:
    """Cycles on fresh folders of 6 jobs until `kills_wanted` SIGKILLs: 1-3 workers, each killed (by itself just
    before a video/poster rename or half-way through a journal line, or from here at a random moment), then a clean
    resume whose folder must hold exactly the expected jobs and must not render a journalled job again."""
    rng = random.Random(seed)
    jobs = 6
    expected = {job.job_id for job in planned_jobs(jobs)}
    worker = [sys.executable, "-m", "tests.crash_worker"]
    kills = cycle = 0
    while kills < kills_wanted:
        cycle += 1
        out, log = tmp_path / f"lane{seed}-cycle{cycle}", tmp_path / f"lane{seed}-cycle{cycle}.log"
        env = {**os.environ, RENDER_LOG_ENV: str(log)}
        processes = []
        for _ in range(rng.choice([1, 2, 3, 3])):
            how = rng.choice(["rename", "append", "signal", "signal"])
            crash = [] if how == "signal" else ["--crash", how, "--at", str(rng.randint(1, 4))]
            command = [*worker, str(out), str(jobs), "--render-s", str(rng.choice([0.02, 0.1])), *crash]
            processes.append((subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE), how))
            time.sleep(rng.uniform(0, 0.3))
        time.sleep(rng.uniform(0.6, 1.8))  # start-up takes ~1 s, then jobs of ~0.1-0.3 s
        for process, how in processes:
            if how == "signal":
                process.send_signal(signal.SIGKILL)
                time.sleep(rng.uniform(0, 0.4))
        for process, _ in processes:
            code = process.wait(timeout=60)
            assert code in (0, -signal.SIGKILL), process.stderr.read().decode()[-2000:]
            kills += code == -signal.SIGKILL

        before = set(journalled(out))  # what the killed workers had recorded for good
        rendered_before = len(renders(log))
        resume = subprocess.run([*worker, str(out), str(jobs)], cwd=REPO, env=env, capture_output=True, timeout=60)
        assert resume.returncode == 0, resume.stderr.decode()[-2000:]
        check_folder(out, expected)
        again = {job for job, _ in renders(log)[rendered_before:]}
        assert not again & before, f"cycle {cycle}: journalled jobs rendered again: {sorted(again & before)}"
    return kills


def test_crash_loop_sigkill_at_random_moments_never_loses_or_repeats_a_journalled_job(tmp_path):
    with ThreadPoolExecutor(2) as lanes:  # two independent folders at once: the workers mostly wait
        kills = [lane.result() for lane in [lanes.submit(crash_cycles, tmp_path, seed, 15) for seed in (1, 2)]]
    assert sum(kills) >= 30


# --- multirun: one result set per sweep -----------------------------------------------------------------------------


def multirun(tmp_path: Path, manifest: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "run.py"), "-m", "hydra/launcher=submitit_local", f"manifest={manifest}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}", "tracking.mode=disabled", "sweep=none", "sample.num_frames=4",
         "sample.num_inference_steps=2", "hydra.launcher.timeout_min=10", "quality.enabled=false", *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_submitit_multirun_is_one_result_set_and_reports_a_failing_jobs_own_message(cache_dir, tmp_path, two_images):
    result = multirun(tmp_path, two_images, "sample.seed=1,2,-1", "tracking.mode=offline")
    output = result.stdout + result.stderr
    # the job that cannot run fails with svd-batch's own message (not submitit's "has not produced any output")
    assert result.returncode != 0 and "has not produced any output" not in output
    failed = "#2  sample.seed=-1  ->  FAILED  ConfigError: invalid config: sample.seed must be in 0..2**63-1, got -1"
    assert failed in output
    assert "#0  sample.seed=1  ->  ok      2 video(s) ok" in output and "#1  sample.seed=2  ->  ok" in output
    # the jobs that ran wrote one result set in the sweep's folder: one index, one gallery, grids over the seeds
    sweep = tmp_path / "sweep"
    index = pd.read_csv(sweep / "index.csv")
    assert sorted(index.seed) == [1, 1, 2, 2] and set(index.status) == {"ok"} and index.job_id.is_unique
    pages = [p for p in sweep.rglob("index.html") if "wandb" not in p.parts]  # W&B runs carry a copy
    assert pages == [sweep / "index.html"] and list(sweep.rglob("index.csv")) == [sweep / "index.csv"]
    assert sorted(p.name for p in (sweep / "grids").glob("*.mp4")) == ["a.mp4", "b.mp4"]  # seed 1 | seed 2 per image
    wandb_runs = sorted((sweep / "wandb").glob("offline-run-*"))  # a W&B run per job, one group: the sweep's folder
    assert len(wandb_runs) == 2 and all(b"sweep" in next(r.glob("*.wandb")).read_bytes() for r in wandb_runs)


# --- scale ---------------------------------------------------------------------------------------------------------


def test_a_noop_resume_of_a_finished_10k_job_plan_decides_in_under_5_s(make_config, tmp_path):
    data = tmp_path / "data"
    for i in range(100):
        write_image(data / f"{i}.png", (16, 16), seed=i)
    (data / "m.csv").write_text("image\n" + "".join(f"{i}.png\n" for i in range(100)))
    seeds = ",".join(map(str, range(100)))
    config = make_config(f"manifest={data / 'm.csv'}", "sweep=none", f"sweep.grid.seed=[{seeds}]",
                         "report.grids=false", "report.gallery=false")  # fmt: skip
    jobs = make_plan(config).jobs
    assert len(jobs) == 10_000
    out = OutputFolder(Path(config.output_dir), "synthesized")  # the finished plan's journal and videos, on disk
    out.open()
    lines = []
    for job in jobs:
        video = out.videos / f"{job.job_id}.mp4"
        video.touch()
        lines.append(journal_line(JobRecord(job.job_id, job.item_id, job.image, "ok", job.params_dict(), job.model,
                                            "cpu", output=f"videos/{video.name}")))  # fmt: skip
    out.journal_path.write_text("\n".join(lines) + "\n")

    started = time.perf_counter()
    result = run(config)
    elapsed = time.perf_counter() - started
    assert result.records == [] and result.summary["jobs_skipped"] == 10_000 and len(result.index) == 10_000
    assert elapsed < 5.0, f"a no-op resume of 10k jobs took {elapsed:.1f} s"
