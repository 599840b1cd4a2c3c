"""Step caching (hardware.step_cache_interval, the approximate h100_fast profile) on the tiny model."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image

from svd_batch.batch.runner import run
from svd_batch.config import ConfigError, load_config
from svd_batch.engine.accelerator import GpuInfo
from svd_batch.engine.hardware import resolve_hardware
from svd_batch.engine.models import build_tiny_pipeline
from svd_batch.engine.step_cache import StepCache, full_step, shallow_step

H100 = GpuInfo("NVIDIA H100", 80.0)
CALL = {"height": 128, "width": 128, "num_frames": 6, "num_inference_steps": 6, "decode_chunk_size": 3}


@pytest.fixture(scope="module")
def pipe():
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def image():
    return Image.fromarray(np.random.default_rng(5).integers(0, 256, (128, 128, 3), dtype=np.uint8))


def unet_inputs(batch: int = 2):
    torch.manual_seed(1)
    return torch.randn(batch, 6, 8, 16, 16), torch.tensor(0.7), torch.randn(batch, 1, 32), torch.randn(batch, 3)


def frames(pipe, image, cache: StepCache | None = None) -> np.ndarray:
    """Frames of a plain pipeline call, with `cache` installed as the UNet's forward for the call."""
    if cache is not None:
        cache.install()
    try:
        return pipe(image, generator=torch.manual_seed(3), output_type="np", **CALL).frames[0]
    finally:
        pipe.unet.__dict__.pop("forward", None)


@torch.no_grad()
def test_full_step_is_the_unet_and_a_shallow_step_on_fresh_features_is_too(pipe):
    sample, t, context, time_ids = unet_inputs()
    expected = pipe.unet(sample, t, encoder_hidden_states=context, added_time_ids=time_ids, return_dict=False)[0]
    full, deep = full_step(pipe.unet, sample, t, context, time_ids)
    shallow = shallow_step(pipe.unet, sample, t, context, time_ids, deep)
    assert torch.equal(full, expected)
    assert torch.equal(shallow, expected)  # so the only approximation is how old the deep features are


@pytest.mark.parametrize("interval,guidance,full,shallow", [(2, False, 3, 3), (3, True, 2, 4), (6, False, 1, 5)])
def test_cached_steps_follow_the_interval_and_stay_close_to_exact(pipe, image, interval, guidance, full, shallow):
    exact = frames(pipe, image)
    cached = StepCache(pipe.unet, pipe.scheduler, interval, reuse_guidance=guidance)
    deep_calls = []
    deep_block = pipe.unet.down_blocks[1]
    hook = deep_block.register_forward_pre_hook(lambda *_: deep_calls.append(1), with_kwargs=True)
    try:
        approx = frames(pipe, image, cached)
    finally:
        hook.remove()
    assert (cached.full_steps, cached.shallow_steps) == (full, shallow)
    assert len(deep_calls) == full  # the deep blocks run on full steps only
    diff = np.abs(approx - exact)
    assert 0 < diff.mean() < 0.05 and diff.max() < 0.5  # close to exact, but not exact: an approximation
    psnr = 10 * np.log10(1 / np.mean(diff**2))
    assert psnr > 25


def test_guidance_reuse_runs_only_the_conditional_half_on_cached_steps(pipe, image):
    cached = StepCache(pipe.unet, pipe.scheduler, interval=3, reuse_guidance=True)
    batches = []
    hook = pipe.unet.conv_in.register_forward_pre_hook(lambda _, args: batches.append(args[0].shape[0]))
    try:
        frames(pipe, image, cached)
    finally:
        hook.remove()
    assert batches == [12, 6, 6, 12, 6, 6]  # (CFG batch x frames): full, cached, cached, full, ...


def test_the_step_functions_compile_to_single_graphs(pipe, image):
    """fullgraph=True fails on any graph break; the eager backend keeps this quick on a CPU."""
    expected = frames(pipe, image, StepCache(pipe.unet, pipe.scheduler, interval=2, reuse_guidance=True))
    compile_ = functools.partial(torch.compile, backend="eager", fullgraph=True, dynamic=False)
    full = functools.partial(compile_(full_step), pipe.unet)
    shallow = functools.partial(compile_(shallow_step), pipe.unet)
    cached = StepCache(pipe.unet, pipe.scheduler, interval=2, reuse_guidance=True, full=full, shallow=shallow)
    assert np.array_equal(frames(pipe, image, cached), expected)


def test_fast_profile_is_approximate_and_labelled(compose_cfg):
    cfg = load_config(compose_cfg("output_dir=/tmp/x", "hardware=h100_fast")).hardware
    hw = resolve_hardware(cfg, H100)
    assert (hw.step_cache_interval, hw.step_cache_guidance, hw.compile_unet.value) == (5, True, "full")
    assert hw.approximation == "stepcache5+guidance"
    exact = resolve_hardware(load_config(compose_cfg("output_dir=/tmp/x", "hardware=h100")).hardware, H100)
    assert exact.approximation == ""


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["hardware.step_cache_interval=0"], "step_cache_interval must be at least 1"),
        (["hardware.step_cache_guidance=true"], "step_cache_guidance needs hardware.step_cache_interval >= 2"),
    ],
)
def test_bad_step_cache_settings_are_refused(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(compose_cfg("output_dir=/tmp/x", *overrides))


def test_approximate_videos_are_separate_jobs(make_config, two_images):
    common = (f"manifest={two_images}", "sweep=none", "sample.num_frames=4", "sample.num_inference_steps=4")
    exact = run(make_config(*common))
    approx = run(make_config(*common, "hardware.step_cache_interval=2"))
    assert len(approx.records) == 2  # not skipped as done: the exact videos do not stand in for approximate ones
    assert {j.job_id for j in exact.jobs}.isdisjoint(j.job_id for j in approx.jobs)
    assert all(r.ok and r.model.endswith(":stepcache2") for r in approx.records)
    assert len(approx.index) == 4
