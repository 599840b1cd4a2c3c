"""Longer and loopable videos: chained segments, colour matching, the join score, pingpong export, provenance and the
SVD-XT 1.1 warning, on synthetic frames with known answers and on real runs of the tiny model."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException
from PIL import Image

from svd_batch.batch.manifest import ManifestError, ManifestRow, read_manifest
from svd_batch.batch.plan import job_id_for, plan_jobs
from svd_batch.batch.runner import run
from svd_batch.config import ConfigError, ExportConfig, ExportFormat, LoopMode, SampleParams
from svd_batch.engine.models import build_tiny_pipeline
from svd_batch.engine.pipeline import VideoGenerator
from svd_batch.engine.segments import ColorMatcher, join_positions, join_segments, segment_seed
from svd_batch.results import quality
from svd_batch.results.export import export_frames, read_frames
from tests.test_quality import panning, texture

PARAMS = SampleParams(num_frames=6, num_inference_steps=2, height=128, width=128, decode_chunk_size=3, seed=3)


@pytest.fixture(scope="module")
def generator():
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return VideoGenerator(pipe)


def test_a_three_segment_job_chains_each_segment_from_the_last_frame_before(generator, monkeypatch):
    image = Image.fromarray(texture(128, 128))
    seen: list[tuple[np.ndarray, int]] = []
    segment_times = []
    render = generator.render_segment

    def spy(condition, params, seed, latents=None):  # what each segment was conditioned on, its seed and times
        seen.append((np.asarray(condition.convert("RGB")).copy(), seed))
        frames, video, times = render(condition, params, seed, latents)
        segment_times.append(times)
        return frames, video, times

    monkeypatch.setattr(generator, "render_segment", spy)
    chained = generator.generate(image, dataclasses.replace(PARAMS, segments=3))
    frames = chained.frames
    assert frames.shape == (3 * 6 - 2, 128, 128, 3)
    assert np.array_equal(seen[0][0], np.asarray(image))
    assert np.array_equal(seen[1][0], frames[5])  # segment 1's last frame
    assert np.array_equal(seen[2][0], frames[10])  # segment 2's last frame, colour-matched
    seeds = [seed for _, seed in seen]
    assert seeds == [3, segment_seed(3, 1), segment_seed(3, 2)] and len(set(seeds)) == 3
    # the first segment is the one-segment video; the later ones are new pictures, not repeats
    single = generator.generate(image, PARAMS)
    assert np.array_equal(frames[:6], single.frames)
    # the frames on the device, for the CLIP measure, only where they are the video's own (no colour matching)
    assert chained.device_frames is None and np.array_equal(single.device_frames.numpy(), single.frames)
    assert not np.array_equal(frames[6:11], frames[1:6])
    # stage times add up over the segments
    assert chained.times.denoise_s == pytest.approx(sum(t.denoise_s for t in segment_times[:3]))


def test_segment_seeds_are_the_jobs_own_first_and_never_another_seeds():
    assert segment_seed(42, 0) == 42
    later = {segment_seed(seed, k) for seed in range(50) for k in range(1, 4)}
    assert len(later) == 150 and later.isdisjoint(range(50)) and max(later) < 2**63


def test_one_segment_is_its_own_video():
    video = texture(16, 16)[None].repeat(3, axis=0)
    assert join_segments([video]) is video


def test_joined_frames_drop_each_later_segments_first_frame():
    segments = [np.full((5, 2, 2, 3), k, np.uint8) for k in range(3)]
    joined = join_segments(segments)
    assert len(joined) == 13 and list(joined[:, 0, 0, 0]) == [0] * 5 + [1] * 4 + [2] * 4
    assert join_positions(5, 3) == [4, 8]


def test_the_job_id_covers_segments_and_chaining_but_keeps_one_segment_ids():
    rows = [ManifestRow(line=2, item_id="a", image="https://example.com/a.png")]
    one = plan_jobs(rows, PARAMS, {}, "m", 3)[0]
    three = plan_jobs(rows, dataclasses.replace(PARAMS, segments=3), {}, "m", 3)[0]
    histogram = plan_jobs(rows, dataclasses.replace(PARAMS, segments=3, color_match="histogram"), {}, "m", 3)[0]
    assert len({one.job_id, three.job_id, histogram.job_id}) == 3
    # a one-segment video has no joins: its colour setting decides nothing, and its id is the one from before
    # svd-batch could chain (this id was computed by the release without segments), so old folders resume
    assert plan_jobs(rows, dataclasses.replace(PARAMS, color_match="none"), {}, "m", 3)[0].job_id == one.job_id
    params = SampleParams(num_frames=14, num_inference_steps=25, height=576, width=1024, decode_chunk_size=8)
    assert job_id_for("sha256:abc", params, "svd:x") == "0455434593108a40"


@pytest.mark.parametrize("mode", ["mean_std", "histogram"])
def test_colour_matching_moves_a_tinted_segment_to_the_first_ones_colours(mode):
    first = panning(2, 256, frames=8)
    tint = np.array([28, -6, -22])  # warmer, as segments drift
    tinted = np.clip(panning(2, 256, frames=8).astype(int) + tint, 0, 255).astype(np.uint8)
    means = first.reshape(-1, 3).mean(axis=0)
    assert np.abs(tinted.reshape(-1, 3).mean(axis=0) - means).max() > 15
    matched = ColorMatcher(mode, first).match(tinted)
    assert matched.dtype == np.uint8 and matched.shape == tinted.shape
    assert np.abs(matched.reshape(-1, 3).mean(axis=0) - means).max() <= 2
    assert ColorMatcher("none", first).match(tinted) is tinted


def test_join_jump_is_one_for_a_seamless_join_and_large_for_a_cut():
    seamless = panning(3, 256, frames=3 * 8 - 2)  # one steady pan cut into three segments of 8 frames
    joins = join_positions(8, 3)
    assert quality.join_jump(seamless, joins) == pytest.approx(1.0, abs=0.15)
    # the second segment pans as steadily, over another scene: a cut
    other = np.stack([texture(144, 300, seed=9)[:, i : i + 256] for i in range(7)])
    cut = np.concatenate([panning(1, 256, frames=8), other])
    assert quality.join_jump(cut, join_positions(8, 2)) > 5
    still = np.repeat(texture(144, 256)[None], 15, axis=0)
    assert quality.join_jump(still, join_positions(8, 2)) == pytest.approx(1.0)


@pytest.mark.parametrize("fmt", ["mp4", "gif", "webp"])
def test_pingpong_export_has_2f_minus_2_frames_and_plays_back(tmp_path, fmt):
    frames = panning(4, 128, frames=7, height=96)
    export = ExportConfig(format=ExportFormat(fmt), loop=LoopMode.pingpong)
    video = read_frames(export_frames(frames, tmp_path / f"loop.{fmt}", export))
    assert len(video) == 2 * 7 - 2
    # forwards, then backwards without repeating either end: frame 7 + i shows frame 5 - i
    error = [np.abs(video[7 + i].astype(int) - video[5 - i].astype(int)).mean() for i in range(5)]
    assert max(error) < 4
    assert np.abs(video[6].astype(int) - frames[6].astype(int)).mean() < 12


def test_chaining_parameters_are_checked_with_a_fix(make_config, manifest_of, tmp_path):
    with pytest.raises(ConfigError, match=r"sample.segments must be in 1..32"):
        make_config("sample.segments=0")
    with pytest.raises(ConfigError, match=r"color_match must be one of none, mean_std, histogram, got 'lab'"):
        make_config("sweep.grid.color_match=[none,lab]")
    with pytest.raises(ConfigCompositionException, match="export.loop=bounce"):  # an enum: refused while composing
        make_config("export.loop=bounce")
    manifest = manifest_of("image,segments,color_match", "a.png,2,histogram", "b.png,2,sepia")
    with pytest.raises(ManifestError, match=r"line 3, column 'color_match': color_match must be one of"):
        read_manifest(manifest)


def test_a_chained_sweep_records_join_jump_loops_and_writes_its_environment(make_config, two_images, tmp_path):
    result = run(make_config(f"manifest={two_images}", "sweep=none", "sample.num_frames=4", "quality.enabled=true",
                             "quality.metrics=[motion_px,join_jump]", "sweep.grid.segments=[1,2]",
                             "export.loop=pingpong", "tracking.mode=offline"))  # fmt: skip
    index = pd.read_csv(result.output_dir / "index.csv")
    assert len(index) == 4 and (index.status == "ok").all()
    chained, single = index[index.segments == 2], index[index.segments == 1]
    assert chained.join_jump.notna().all() and single.join_jump.isna().all()  # no joins, no score
    for row in index.itertuples():
        rendered = row.segments * 3 + 1  # 4 and 7 frames
        assert len(read_frames(result.output_dir / row.output)) == 2 * rendered - 2  # exported as a loop
    assert '"join_jump": ' in (result.output_dir / "index.html").read_text()
    [grid] = (result.output_dir / "grids").glob("a*.mp4")
    assert len(read_frames(grid)) == 2 * 7 - 2  # the longest tile's length; the shorter loop starts again

    environment = json.loads((result.output_dir / "environment.json").read_text())
    fields = {"svd_batch", "git_revision", "python", "platform", "torch", "cuda", "cudnn", "diffusers", "transformers",
              "triton", "flash_attn_4", "device", "gpu", "driver", "attention", "hardware", "written_at"}  # fmt: skip
    assert set(environment) == fields
    assert environment["hardware"]["name"] == "auto:cpu" and environment["torch"].startswith("2.")
    assert environment["attention"]["processors"] and environment["attention"]["spatial"] == "default"
    logged = next(result.tracking_dir.glob("*.wandb")).read_bytes()  # the W&B config carries it too
    assert b"git_revision" in logged and b"quality/join_jump" in logged


@pytest.mark.parametrize("model", ["svd_xt_1_1", "svd_xt"])
def test_sweeping_conditioning_on_svd_xt_1_1_warns_once(make_config, two_images, caplog, model):
    caplog.set_level(logging.WARNING)
    config = make_config(f"manifest={two_images}", f"model={model}", "sweep=none", "dry_run=true",
                         "sweep.grid.motion_bucket_id=[64,127]", "sweep.grid.fps=[6,12]")  # fmt: skip
    run(config)
    warnings = [r.getMessage() for r in caplog.records if "fine-tuned at fixed conditioning" in r.getMessage()]
    if model == "svd_xt":
        assert warnings == []
        return
    assert len(warnings) == 1 and "fps and motion_bucket_id" in warnings[0]
    caplog.clear()
    run(make_config(f"manifest={two_images}", f"model={model}", "sweep=none", "dry_run=true",
                    "sweep.grid.seed=[1,2]"))  # fmt: skip
    assert not [r for r in caplog.records if "fine-tuned" in r.getMessage()]


def test_backfill_measures_a_looped_video_as_rendered(tmp_path):
    from svd_batch.results.backfill import rendered_frames

    frames = panning(3, 128, frames=7, height=96)
    looped = np.concatenate([frames, frames[-2:0:-1]])
    assert np.array_equal(rendered_frames(looped, {"num_frames": 4, "segments": 2}), frames)
    assert np.array_equal(rendered_frames(frames, {"num_frames": 7}), frames)
