"""Per-job measures of what a video shows, on synthetic videos with known answers and on real runs of the tiny
model."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from svd_batch.batch.records import QUALITY_COLUMNS, OutputFolder, journal_line, parse_journal_line
from svd_batch.batch.runner import run
from svd_batch.config import ConfigError
from svd_batch.engine.models import build_tiny_pipeline
from svd_batch.engine.pipeline import VideoGenerator
from svd_batch.results import quality
from svd_batch.results.summary import format_summary
from tests.conftest import REPO

ONE_SEGMENT = [c for c in QUALITY_COLUMNS if c != "join_jump"]  # join_jump: chained videos only (test_segments.py)


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture (low-frequency sinusoids): what optical flow can track."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width, 3))
    for _ in range(12):
        fy, fx = rng.uniform(0.01, 0.06, 2)
        image += rng.uniform(0.2, 1.0, 3) * np.sin(2 * np.pi * (fy * y + fx * x) + rng.uniform(0, 6.3))[..., None]
    image = (image - image.min()) / (image.max() - image.min())
    return (image * 255).astype(np.uint8)


def panning(k: int, width: int, frames: int = 8, height: int = 144) -> np.ndarray:
    """A camera panning k pixels per frame across a texture, `width` pixels wide."""
    scene = texture(height, width + k * frames)
    return np.stack([scene[:, i * k : i * k + width] for i in range(frames)])


def test_a_still_video_has_no_motion_or_flicker():
    still = np.repeat(texture(144, 256)[None], 6, axis=0)
    assert quality.motion_px(still) == pytest.approx(0, abs=0.01) and quality.flicker(still) < 0.5


@pytest.mark.parametrize("k,width,expected", [(3, 256, 3.0), (5, 256, 5.0), (6, 512, 3.0)])
def test_a_known_pan_measures_its_speed_at_the_reference_width(k, width, expected):
    """Pixels per frame at 256 wide: a 6 px/frame pan of a 512-wide video is 3 px/frame at the reference width."""
    assert quality.motion_px(panning(k, width)) == pytest.approx(expected, rel=0.1)
    assert quality.flicker(panning(k, width)) < 3  # the motion is explained by the flow: nothing flickers


def test_noise_and_strobing_flicker_and_smooth_motion_does_not():
    noise = np.random.default_rng(1).integers(0, 256, (6, 144, 256, 3), dtype=np.uint8)
    strobe = np.stack([texture(144, 256) // (1 + i % 2) for i in range(6)])  # brightness halves every other frame
    smooth = quality.flicker(panning(3, 256))
    assert quality.flicker(noise) > 30 and quality.flicker(strobe) > 10 * smooth


@pytest.fixture(scope="module")
def tiny_generator():
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return VideoGenerator(pipe)


def test_a_video_of_its_input_scores_as_faithful_and_noise_does_not(tiny_generator):
    image = texture(128, 128)
    faithful = np.repeat(image[None], 4, axis=0)
    noise = np.random.default_rng(2).integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    assert quality.first_frame_psnr(faithful, image) == quality.MAX_PSNR_DB
    assert quality.first_frame_psnr(noise, image) < 15
    same = tiny_generator.subject_similarity(faithful, Image.fromarray(image))
    other = tiny_generator.subject_similarity(noise, Image.fromarray(image))
    assert same == pytest.approx(1.0, abs=1e-4) and other < same - 0.01
    # the frames as decoding leaves them on the device ((C, F, H, W) memory): the same measure
    on_device = torch.from_numpy(noise).permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    device_other = tiny_generator.subject_similarity(noise, Image.fromarray(image), on_device)
    assert device_other == pytest.approx(other, abs=1e-5)


def test_every_job_gets_its_measures_in_the_index(make_config, two_images):
    result = run(make_config(f"manifest={two_images}", "sweep=none", "sample.num_frames=4", "sweep.grid.seed=[1,2]",
                             "tracking.mode=offline", "quality.enabled=true"))  # fmt: skip
    index = pd.read_csv(result.output_dir / "index.csv")
    assert index[ONE_SEGMENT].notna().all().all() and index.join_jump.isna().all() and (index.time_quality_s > 0).all()
    assert index.subject_similarity.between(-1, 1).all() and (index.motion_px >= 0).all()
    assert all(set(r.quality) == set(ONE_SEGMENT) for r in result.records)
    # the summary reads the sweep as numbers: each measure's mean per value of each swept parameter
    by_seed = result.summary["quality_by_parameter"]["seed"]
    assert set(by_seed) == {"1", "2"} and set(by_seed["1"]) == set(ONE_SEGMENT)
    mean_motion = index[index.seed == 1].motion_px.mean()
    assert by_seed["1"]["motion_px"] == pytest.approx(mean_motion, abs=1e-3)
    assert "quality     seed=1: motion_px" in format_summary(result.summary, [])
    logged = next(result.tracking_dir.glob("*.wandb")).read_bytes()  # W&B: per-job measures, motion by seed chart
    assert b"quality/motion_px" in logged and b"quality/motion_px_by_seed" in logged


def test_measures_can_be_chosen_or_turned_off(make_config, two_images, tmp_path):
    chosen = run(make_config(f"manifest={two_images}", "sweep=none", "sample.num_frames=4",
                             "quality.enabled=true", "quality.metrics=[flicker]"))  # fmt: skip
    assert all(set(r.quality) == {"flicker"} for r in chosen.records)
    off = run(make_config(f"manifest={two_images}", "sweep=none", "sample.num_frames=4", "sample.seed=3",
                          "quality.enabled=false"))  # fmt: skip
    assert all(r.quality == {} and "time_quality_s" not in r.times for r in off.records)
    with pytest.raises(ConfigError, match="quality.metrics: 'sharpness' is not a measure svd-batch has"):
        make_config("quality.metrics=[sharpness]")


def test_the_report_backfills_measures_for_a_folder_written_without_them(make_config, two_images, cache_dir):
    result = run(make_config(f"manifest={two_images}", "sweep=none", "sample.num_frames=4", "quality.enabled=true"))
    measured = {r.job_id: dict(r.quality) for r in result.records}  # what the run measured on its frames
    [journal] = (result.output_dir / "journals").glob("*.jsonl")
    records = [parse_journal_line(line) for line in journal.read_text().splitlines()]
    journal.write_text("".join(journal_line(dataclasses.replace(r, quality={})) + "\n" for r in records))
    before = OutputFolder(result.output_dir).write_index()  # as an svd-batch without the measures left it
    assert before[list(QUALITY_COLUMNS)].isna().all().all()

    backfill = subprocess.run(
        [sys.executable, "-m", "svd_batch.report", f"output_dir={result.output_dir}", "report.quality=true"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    assert "quality: measured 2 video(s)" in backfill.stdout
    after = pd.read_csv(result.output_dir / "index.csv")
    assert len(after) == 2 and after[ONE_SEGMENT].notna().all().all()
    assert list(after.finished_at) == list(before.finished_at)  # the jobs' own times are kept
    # the numbers the run measured, now from the mp4 files (CLIP through the folder's tiny model)
    for row in after.itertuples():
        assert row.subject_similarity == pytest.approx(measured[row.job_id]["subject_similarity"], abs=0.02)
        assert row.first_frame_psnr == pytest.approx(measured[row.job_id]["first_frame_psnr"], abs=1.0)
        assert row.motion_px == pytest.approx(measured[row.job_id]["motion_px"], rel=0.25, abs=0.5)
    assert '"motion_px": ' in (result.output_dir / "index.html").read_text()  # the gallery was remade with them
