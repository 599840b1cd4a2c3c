"""Comparison grids, poster frames and the HTML gallery, from a real tiny-model run."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from svd_batch.batch.runner import run
from svd_batch.config import ExportConfig, ReportConfig, SampleParams
from svd_batch.results import report
from svd_batch.results.export import read_frames
from svd_batch.results.report import LABEL_HEIGHT
from tests.conftest import REPO, write_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def swept_run(tmp_path_factory, cache_dir):
    """One image (plus one that fails) over motion x noise_aug x seed, 4 frames each."""
    from hydra import compose, initialize_config_dir

    from svd_batch.config import load_config
    from tests.conftest import CONF_DIR

    root = tmp_path_factory.mktemp("report")
    write_image(root / "data" / "cat.png", (128, 128))
    (root / "data" / "m.csv").write_text("image,id\ncat.png,cat\nmissing.png,ghost\n")
    overrides = [f"cache_dir={cache_dir}", f"output_dir={root / 'out'}", f"manifest={root / 'data' / 'm.csv'}",
                 "tracking.mode=disabled", "sweep=none", "sample.num_frames=4", "sample.num_inference_steps=2",
                 "sweep.grid.motion_bucket_id=[30,200]", "sweep.grid.noise_aug_strength=[0.0,0.3]",
                 "sweep.grid.seed=[1,2]"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = load_config(compose("config", overrides=overrides))
    return run(config)


def test_a_comparison_grid_per_image_and_fixed_setting(swept_run):
    out = swept_run.output_dir
    grids = sorted(p.name for p in (out / "grids").glob("*.mp4"))
    assert grids == ["cat__seed-1.mp4", "cat__seed-2.mp4"]  # rows x cols = motion x noise, one grid per seed
    frames = read_frames(out / "grids" / grids[0])
    assert frames.shape == (4, 2 * (128 + LABEL_HEIGHT), 2 * 128, 3)
    # each tile is the job's own video: the top-left tile (motion 30, noise 0.0) differs from the bottom-right one
    top_left = frames[:, LABEL_HEIGHT : LABEL_HEIGHT + 128, :128].astype(int)
    bottom_right = frames[:, -128:, -128:].astype(int)
    assert abs(top_left - bottom_right).mean() > 1


def test_poster_frames_for_every_ok_job(swept_run):
    index = pd.read_csv(swept_run.output_dir / "index.csv")
    ok = index[index.status == "ok"]
    assert len(ok) == 8 and all((swept_run.output_dir / p).is_file() for p in ok.poster)


def test_gallery_lists_every_job_with_its_video_or_error(swept_run):
    page = (swept_run.output_dir / "index.html").read_text()
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert len(data["jobs"]) == 16 and data["summary"] == {"jobs": 16, "ok": 8, "failed": 8, "peak_vram_gib": None}
    for job in data["jobs"]:
        if job["status"] == "ok":
            assert (swept_run.output_dir / job["output"]).is_file()
        else:
            assert "missing.png: no such file" in job["error"]
    assert set(data["stages"]) == {"load_image", "encode", "denoise", "decode", "export", "quality", "total"}
    assert data["measures"] == ["motion_px", "subject_similarity", "first_frame_psnr", "flicker", "join_jump"]
    assert "http" not in page.replace("http(s)", "")  # self-contained: nothing to fetch


def test_report_regenerates_from_an_existing_folder_without_a_model(swept_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(swept_run.output_dir, out)  # its grids stay: other axes make other grids, and those go
    (out / "index.html").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "svd_batch.report", f"output_dir={out}", "report.rows=seed",
         "report.cols=motion_bucket_id", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (out / "grids").glob("*.mp4")) == ["cat__noise_aug_strength-0.0.mp4",
                                                                     "cat__noise_aug_strength-0.3.mp4"]  # fmt: skip
    assert (out / "index.html").is_file()


def test_a_grid_is_made_again_only_when_its_videos_or_layout_change(swept_run, tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(swept_run.output_dir, out)
    tiled = []
    real_tile = report.tile_videos
    monkeypatch.setattr(
        report, "tile_videos", lambda root, group, *a: tiled.append(len(group)) or real_tile(root, group, *a)
    )
    config = ReportConfig()
    report.make_report(out, config, ExportConfig())
    assert tiled == []  # both grids were made of these videos already
    video = out / pd.read_csv(out / "index.csv").query("status == 'ok' and seed == 2").output.iloc[0]
    rendered_again = time.time() + 5  # after its grid was made, however long the run took on a loaded machine
    os.utime(video, (rendered_again, rendered_again))
    report.make_report(out, config, ExportConfig())
    assert tiled == [4]  # the seed-2 grid only
    report.make_report(out, dataclasses.replace(config, max_tile_width=64), ExportConfig())
    assert tiled == [4, 4, 4]  # another layout: both again


def test_a_grid_waits_for_every_planned_job_also_one_another_worker_renders(tmp_path, monkeypatch):
    from svd_batch.batch.plan import Job
    from svd_batch.batch.records import INDEX_COLUMNS, JobRecord

    made = []
    monkeypatch.setattr(report, "make_grid", lambda root, name, group, *a: made.append((name, sorted(group.job_id))))
    jobs = [
        Job(f"{image}{m}", image, f"{image}.png", SampleParams(motion_bucket_id=m), "m")
        for image in "ab"
        for m in (30, 200)
    ]

    def recorded(job):
        return JobRecord(job.job_id, job.item_id, job.image, "ok", job.params_dict(), job.model, "cpu")

    grids = report.GridBuilder(
        tmp_path, ReportConfig(), ExportConfig(), pd.DataFrame(columns=INDEX_COLUMNS), jobs, "cpu"
    )
    for job in jobs[:3]:  # b200 is another worker's: this run never records it
        grids.job_recorded(recorded(job))
    grids.close()
    assert made == [("a", ["a200", "a30"])]  # b's grid is left to the report


@pytest.mark.parametrize("a_last_fails", [False, True])
def test_grids_are_made_as_their_images_finish(make_config, manifest_of, tmp_path, monkeypatch, a_last_fails):
    """Each image's grid starts (on the grids thread) when its last job is recorded, also when that job failed, while
    the next image renders; the report at the end keeps it."""
    from svd_batch.batch.worker import BatchRunner

    write_image(tmp_path / "data" / "a.png", (128, 128), seed=1)
    write_image(tmp_path / "data" / "b.png", (128, 128), seed=2)
    manifest = manifest_of("image,id", "a.png,a", "b.png,b")
    seen, tiled, rendered = [], [], []
    real_recorded, real_tile, real_generate = report.GridBuilder._recorded, report.tile_videos, BatchRunner.generate

    def recorded(self, record):  # on the grids thread, one record after the other
        real_recorded(self, record)
        seen.append(sorted(self.started))

    def tile_videos(root, group, *args):
        tiled.append((group.id.iloc[0], len(group), threading.current_thread().name))
        return real_tile(root, group, *args)

    def generate(self, job, inputs=None):
        rendered.append(job.item_id)
        if a_last_fails and rendered == ["a", "a"]:
            inputs = dataclasses.replace(inputs, error=RuntimeError("this job fails"))
        return real_generate(self, job, inputs)

    monkeypatch.setattr(report.GridBuilder, "_recorded", recorded)
    monkeypatch.setattr(report, "tile_videos", tile_videos)
    monkeypatch.setattr(BatchRunner, "generate", generate)
    result = run(
        make_config(f"manifest={manifest}", "sweep=none", "sample.num_frames=4", "sweep.grid.motion_bucket_id=[30,200]")
    )
    assert [r.status for r in result.records] == ["ok", "failed" if a_last_fails else "ok", "ok", "ok"]
    assert seen == [[], ["a"], ["a"], ["a", "b"]]  # a's grid when a's second job is in, before b's first
    # each made once, on the grids thread (not again at the end), of its ok videos
    assert tiled == [("a", 1 if a_last_fails else 2, "grids_0"), ("b", 2, "grids_0")]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
def test_gallery_in_headless_chromium_shows_and_plays_every_video(swept_run, tmp_path):
    page = (swept_run.output_dir / "index.html").as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
             "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=8000"]  # fmt: skip
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    videos = re.findall(r'<div class="job ok" data-job="(\w+)">.*?<video ([^>]*)>', dom, re.S)
    assert len(videos) == 8
    assert all('data-ready="1"' in attributes for _, attributes in videos), "a video did not decode"
    assert dom.count('class="job failed"') == 8 and "missing.png: no such file" in dom
    assert len(re.findall(r'<div class="params measures">motion_px=[\d.]+ subject_similarity=', dom)) == 8  # ok cards
    assert len(re.findall(r'<polyline class="motion-line" points="\d', dom)) == 1  # the motion plot: one image

    shot = tmp_path / "gallery.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,900", page], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
