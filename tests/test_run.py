"""End to end: `python run.py` through Hydra, and the runner in-process on the tiny model with real files."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import StableVideoDiffusionPipeline
from PIL import Image

from svd_batch.batch.records import INDEX_COLUMNS, TIME_COLUMNS
from svd_batch.batch.runner import run
from svd_batch.engine import models
from svd_batch.results.export import read_frames
from tests.conftest import REPO, write_image


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "run.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def wandb_runs(output_dir: Path) -> list[Path]:
    return sorted((output_dir / "wandb").glob("offline-run-*"))


def test_default_run_renders_the_samples_with_index_and_offline_wandb(cache_dir, tmp_path):
    out = tmp_path / "out"
    result = run_cli(f"output_dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "6 ok, 0 failed" in result.stdout  # Hydra logs to stdout

    index = pd.read_csv(out / "index.csv")
    assert list(index.columns) == list(INDEX_COLUMNS)
    assert len(index) == 6 and set(index.status) == {"ok"}
    assert sorted(index.id.unique()) == ["boat", "logo", "sunset"]
    assert sorted(index.motion_bucket_id.unique()) == [64, 180]
    assert index[list(TIME_COLUMNS)].notna().all().all() and (index.time_denoise_s > 0).all()
    assert index.error.isna().all() and index.peak_vram_gib.isna().all()  # CPU: no VRAM figure
    for output in index.output:
        frames = read_frames(out / output)
        assert frames.shape == (8, 128, 128, 3)
    [journal] = (out / "journals").glob("*.jsonl")  # this worker's journal and config, named after it
    assert set(index.worker) == {journal.stem} and (out / "configs" / f"{journal.stem}.yaml").is_file()

    [wandb_run] = wandb_runs(out)
    assert len(list(wandb_run.glob("files/media/videos/job/*.mp4"))) == 6
    assert len(list(wandb_run.glob("files/media/videos/grid/*.mp4"))) == 3  # one comparison grid per image
    assert list(wandb_run.glob("files/media/table/jobs_*.table.json"))
    assert (wandb_run / "files" / "index.html").is_file()  # the gallery travels with the run
    assert list(wandb_run.glob("*.wandb"))


def test_dry_run_prints_the_plan_without_loading_the_model(make_config, two_images, monkeypatch, capsys):
    monkeypatch.setattr(models, "load_pipeline", lambda *a: pytest.fail("dry run loaded the model"))
    result = run(make_config(f"manifest={two_images}", "dry_run=true", "sweep.grid.seed=[1,2,3]"))
    printed = capsys.readouterr().out
    assert len(result.jobs) == 12
    assert "12 job(s): 2 image(s) x 6 grid point(s)" in printed and "estimated time" in printed
    assert not (Path(make_config().output_dir)).exists()


def test_runner_png_output_equals_a_plain_diffusers_call(make_config, two_images):
    config = make_config(f"manifest={two_images}", "sweep=none", "export.format=png", "sample.num_frames=6")
    result = run(config)
    record = result.records[0]
    ours = read_frames(result.output_dir / record.output)

    plain = StableVideoDiffusionPipeline.from_pretrained(config.model.path, use_safetensors=True)
    plain.set_progress_bar_config(disable=True)
    image = Image.open(two_images.parent / "a.png")
    expected = plain(
        image, height=128, width=128, num_frames=6, num_inference_steps=2, decode_chunk_size=8,
        generator=torch.manual_seed(42),
    ).frames[0]  # fmt: skip
    assert np.array_equal(ours, np.stack([np.asarray(f) for f in expected]))


def test_rerun_skips_done_jobs_and_a_changed_parameter_adds_new_ones(make_config, two_images):
    first = run(make_config(f"manifest={two_images}", "sweep=none"))
    assert first.summary["jobs_ok"] == 2
    videos = {p: p.stat().st_mtime_ns for p in (first.output_dir / "videos").iterdir()}

    again = run(make_config(f"manifest={two_images}", "sweep=none"))
    assert again.records == [] and again.summary["jobs_skipped"] == 2
    assert {p: p.stat().st_mtime_ns for p in (first.output_dir / "videos").iterdir()} == videos

    changed = run(make_config(f"manifest={two_images}", "sweep=none", "sample.motion_bucket_id=30"))
    assert len(changed.records) == 2 and changed.summary["jobs_skipped"] == 0
    index = pd.read_csv(first.output_dir / "index.csv")
    assert len(index) == 4 and sorted(index.motion_bucket_id) == [30, 30, 127, 127]

    fresh = run(make_config(f"manifest={two_images}", "sweep=none", "resume=false"))
    assert len(fresh.records) == 2


def test_bad_images_fail_alone_and_the_rest_finish(make_config, tmp_path):
    data = tmp_path / "data"
    write_image(data / "good.png", (128, 128))
    (data / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (data / "manifest.csv").write_text("image,id\nmissing.png,missing\ncorrupt.png,corrupt\ngood.png,good\n")
    result = run(make_config(f"manifest={data / 'manifest.csv'}", "sweep=none"))

    index = pd.read_csv(result.output_dir / "index.csv").set_index("id")
    assert index.loc["good", "status"] == "ok"
    assert index.loc["missing", "status"] == "failed" and "missing.png: no such file" in index.loc["missing", "error"]
    assert index.loc["corrupt", "status"] == "failed" and "not a readable image" in index.loc["corrupt", "error"]
    assert pd.isna(index.loc["missing", "output"])
    assert sorted(p.name for p in (result.output_dir / "videos").iterdir()) == [f"{index.loc['good', 'job_id']}.mp4"]


def test_per_row_parameters_and_export_formats(make_config, tmp_path):
    data = tmp_path / "data"
    write_image(data / "a.png", (200, 100))  # not the target size: fitted by cropping
    (data / "m.csv").write_text("image,id,num_frames,seed\na.png,short,4,1\na.png,long,,2\n")
    result = run(make_config(f"manifest={data / 'm.csv'}", "sweep=none", "export.format=gif"))
    frames = {r.id: read_frames(result.output_dir / r.output) for r in result.records}
    assert frames["short"].shape == (4, 128, 128, 3) and frames["long"].shape == (8, 128, 128, 3)
    assert all(r.output.endswith(".gif") for r in result.records)


def test_wandb_offline_logs_every_job_and_the_summary(make_config, two_images):
    result = run(make_config(f"manifest={two_images}", "sweep=none", "tracking.mode=offline", "quality.enabled=true"))
    wandb_run = result.tracking_dir
    assert wandb_run is not None and wandb_run.parent == result.output_dir / "wandb"
    assert len(list(wandb_run.glob("files/media/videos/**/*.mp4"))) == 2
    [table] = wandb_run.glob("files/media/table/jobs_*.table.json")
    columns = json.loads(table.read_text())["columns"]
    assert columns[:5] == ["job_id", "id", "status", "video", "thumbnail"] and "motion_bucket_id" in columns
    assert {"motion_px", "subject_similarity", "first_frame_psnr", "flicker"} <= set(columns)  # quality measures
    logged = next(wandb_run.glob("*.wandb")).read_bytes()
    assert b"jobs_ok" in logged  # the summary
    assert b"job/time_denoise_s" in logged and b"job/time_decode_s" in logged  # stage-time charts per job


def run_py_imports(arguments: list[str], timeout: int = 120) -> tuple[list[str], str]:
    """`python run.py ARGUMENTS` in a new Python (through runpy, in the repository): which of torch, diffusers,
    transformers and wandb it imported, and what it printed."""
    code = (  # run.py ends its process itself (exit_now), after the atexit functions: the report is one
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('imported:', sorted(\n"
        "    m for m in ('torch', 'diffusers', 'transformers', 'wandb') if m in sys.modules)))\n"
        f"sys.argv = ['run.py', *{arguments!r}]\n"
        "try:\n"
        "    runpy.run_path('run.py', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = result.stdout.rsplit("imported: ", 1)[1].splitlines()[0]
    return ast.literal_eval(imported), result.stdout


def test_the_jobs_table_goes_to_wandb_before_the_report_is_made(make_config, two_images, monkeypatch):
    """The tracking process writes the table (a media file per video) while this process makes the grids, index and
    report: only the summary and W&B's own finish are left for the run's end."""
    from svd_batch.batch import runner
    from svd_batch.results import tracking

    sent, send, make_report = [], tracking.Tracker._send, runner.make_report
    monkeypatch.setattr(tracking.Tracker, "_send", lambda self, *args: sent.append(args[0]) or send(self, *args))
    when_reported = []
    monkeypatch.setattr(runner, "make_report", lambda *a: when_reported.append(list(sent)) or make_report(*a))
    result = run(make_config(f"manifest={two_images}", "sweep=none", "tracking.mode=offline"))
    assert when_reported[0][-1] == "log_table" and when_reported[0].count("log_job") == 2
    assert sent[-2:] == ["log_report", "finish"] and sent.count("log_table") == 1
    assert len(list(result.tracking_dir.glob("files/media/table/jobs_*.table.json"))) == 1  # logged once


def test_wandb_runs_in_a_process_of_its_own(two_images, cache_dir, tmp_path):
    """The run's own interpreter never imports wandb (its start overlaps the model load on another core)."""
    out = tmp_path / "out"
    arguments = [f"manifest={two_images}", f"output_dir={out}", "sweep=none", "tracking.mode=offline",
                 "sample.num_inference_steps=2", "quality.enabled=false"]  # fmt: skip
    imported, _ = run_py_imports(arguments, timeout=300)
    assert imported == ["diffusers", "torch", "transformers"]
    [wandb_run] = wandb_runs(out)
    assert len(list(wandb_run.glob("files/media/videos/job/*.mp4"))) == 2 and list(wandb_run.glob("*.wandb"))


def test_a_tracking_process_that_ended_early_is_reported_once(tmp_path, monkeypatch, caplog):
    """W&B failed at its start and its process is gone before the run finishes: finishing warns, and does not fail."""
    from svd_batch.config import TrackingConfig, TrackingMode
    from svd_batch.results.tracking import Tracker

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "no-wandb-login"))
    tracker = Tracker(TrackingConfig(mode=TrackingMode.online), tmp_path, {})
    tracker.process.wait(timeout=120)  # gone: the next message finds the pipe closed
    tracker.finish({"jobs_ok": 0})
    assert tracker.run_path is None and tracker.process is None
    assert caplog.text.count("W&B tracking failed") == 1 and "API key" in caplog.text


def test_a_wandb_failure_is_a_warning_and_every_video_is_made(make_config, two_images, monkeypatch, caplog):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(two_images.parent / "no-wandb-login"))  # no stored login either
    result = run(make_config(f"manifest={two_images}", "sweep=none", "tracking.mode=online"))
    assert [r.status for r in result.records] == ["ok", "ok"] and result.tracking_dir is None
    assert "W&B tracking failed (the videos, index and report are complete)" in caplog.text
    assert "API key" in caplog.text


def test_a_basic_multirun_is_one_result_set_whose_grids_tile_every_job(cache_dir, tmp_path, two_images):
    """Hydra's default launcher runs the jobs one after the other in this process (submitit: tests/test_workers.py)."""
    sweep_dir = tmp_path / "sweep-motion"
    result = run_cli(
        "-m", "sample.motion_bucket_id=20,200", "sweep=none", f"manifest={two_images}", "tracking.mode=disabled",
        f"hydra.sweep.dir={sweep_dir}", "sample.num_frames=4", "sample.num_inference_steps=2", "quality.enabled=false",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    index = pd.read_csv(sweep_dir / "index.csv")  # the sweep's folder holds every job of every multirun job
    assert sorted(index.motion_bucket_id) == [20, 20, 200, 200] and set(index.status) == {"ok"}
    assert sorted(p.name for p in (sweep_dir / "grids").glob("*.mp4")) == ["a.mp4", "b.mp4"]  # tiling both runs
    assert "#0  sample.motion_bucket_id=20  ->  ok      2 video(s) ok" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["sample.motion_bucket_id=999"], "motion_bucket_id must be in 0..255"),
        (["manifest=nope.csv"], "manifest nope.csv does not exist"),
        (["hardware=resident"], "needs a CUDA GPU"),
    ],
)
def test_bad_input_exits_with_a_clear_message_and_no_traceback(cache_dir, tmp_path, args, message):
    result = run_cli(f"output_dir={tmp_path / 'out'}", "tracking.mode=disabled", *args, cwd=tmp_path)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert message in output and "Traceback" not in output


@pytest.mark.parametrize("arguments", [["dry_run=true", "sweep.grid.seed=[1,2]"], ["--cfg", "job"]])
def test_dry_run_and_printing_the_config_never_import_torch(arguments, two_images, cache_dir):
    """Planning is pure Python: a dry run asks nvidia-smi about the GPU, and imports neither torch nor diffusers."""
    imported, printed = run_py_imports([f"manifest={two_images}", *arguments])
    assert imported == []
    if arguments[0] == "dry_run=true":
        assert "8 job(s): 2 image(s) x 4 grid point(s)" in printed  # default sweep: 2 motions x 2 seeds
