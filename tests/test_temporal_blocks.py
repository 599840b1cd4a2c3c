"""Temporal res blocks in 2-D (svd_batch.engine.temporal_blocks) on the tiny model: the same output as diffusers in
the UNet and the VAE decoder, statistics combined exactly from their parts, installed where it applies and removable,
taken inside compiled graphs only (traced as one), and part of the compiled-artifact keys.

The 2-D path runs only while torch compiles; the `compiling` fixture makes eager calls take it, so its arithmetic is
checked directly."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch
from diffusers.models.resnet import TemporalResnetBlock

from svd_batch.engine import compiled, temporal_blocks, unet_fast
from svd_batch.engine.hardware import FastPaths
from svd_batch.engine.models import build_tiny_pipeline
from svd_batch.engine.prepare import reset_pipeline
from tests.conftest import tiny_denoise


@pytest.fixture
def compiling(monkeypatch):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline().to(torch.float32)


def decode(pipe) -> torch.Tensor:
    latents = torch.randn(6, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return pipe.vae.decode(latents, num_frames=6).sample


def spy_on_norms(monkeypatch) -> list[bool]:
    """Records each `group_norm_in_parts` call (the 2-D path taken) by whether it gathered statistics per channel."""
    seen = []
    norm = temporal_blocks.group_norm_in_parts

    def spy(x, module, max_part_dims=1, by_channel=False):
        seen.append(by_channel)
        return norm(x, module, max_part_dims, by_channel)

    monkeypatch.setattr(temporal_blocks, "group_norm_in_parts", spy)
    return seen


def temporal_input(batch=2, channels=64, frames=5, height=6, width=8, offset=7.0) -> torch.Tensor:
    """Laid out as SpatioTemporalResBlock hands it over: a (batch, channels, frames, ...) view of frame-major data."""
    generator = torch.Generator().manual_seed(4)
    frame_major = torch.randn(batch * frames, channels, height, width, generator=generator) * 3 + offset
    return frame_major.reshape(batch, frames, channels, height, width).permute(0, 2, 1, 3, 4)


@pytest.mark.parametrize(("max_part_dims", "by_channel"), [(0, False), (1, False), (2, False), (0, True), (2, True)])
def test_group_norm_from_parts_equals_group_norm(max_part_dims, by_channel, monkeypatch):
    monkeypatch.setattr(temporal_blocks, "MIN_STATISTICS", 10**9)  # split as far as allowed
    norm = torch.nn.GroupNorm(32, 64, eps=1e-6)
    torch.nn.init.normal_(norm.weight), torch.nn.init.normal_(norm.bias)
    x = temporal_input()  # a mean far from zero: combining the parts' variances must not cancel catastrophically
    exact = norm.double()(x.double())
    got = temporal_blocks.group_norm_in_parts(x, norm.float(), max_part_dims, by_channel)
    assert (got.double() - exact).abs().max() < 2e-5  # float32 statistics, as native_group_norm
    half = temporal_input().to(torch.bfloat16)
    norm.to(torch.bfloat16)
    got = temporal_blocks.group_norm_in_parts(half, norm, max_part_dims, by_channel)
    assert got.dtype == torch.bfloat16
    assert (got.float() - norm(half).float()).abs().max() <= 2**-6  # within bfloat16 rounding of values ~1-4


def test_parts_follow_the_statistics_needed():
    """Frames only while batch x groups is too few statistics; rows too with more parts allowed; never the last
    dimension (each part's values must lie together)."""
    seen = []
    var_mean = torch.var_mean

    def spy(x, dim, **kwargs):
        seen.append(dim)
        return var_mean(x, dim=dim, **kwargs)

    norm = torch.nn.GroupNorm(32, 64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "var_mean", spy)
        temporal_blocks.group_norm_in_parts(temporal_input(), norm, max_part_dims=1)  # 64 x 5 frames
        temporal_blocks.group_norm_in_parts(temporal_input(), norm, max_part_dims=2)  # 320 < 1024: rows too
        temporal_blocks.group_norm_in_parts(temporal_input(batch=8, frames=5), norm, max_part_dims=2)  # 1280 >= 1024
        temporal_blocks.group_norm_in_parts(torch.randn(2, 64, 6, 8), norm, max_part_dims=1)  # 4-D: rows
        temporal_blocks.group_norm_in_parts(torch.randn(40, 64, 6, 8), norm, max_part_dims=1)  # enough already
        temporal_blocks.group_norm_in_parts(torch.randn(2, 64, 6, 8), norm, 0, by_channel=True)  # per channel
        temporal_blocks.group_norm_in_parts(torch.randn(2, 64, 6, 8), norm, 1, by_channel=True)  # 128: rows too
    # grouped dims: (batch, group, channel-in-group, *spatial)
    assert seen == [(2, 4, 5), (2, 5), (2, 4, 5), (2, 4), (2, 3, 4), (3, 4), (4,)]


def test_unet_and_vae_compute_what_diffusers_computes_and_come_off_again(pipe, compiling, monkeypatch):
    taken = spy_on_norms(monkeypatch)
    unet, decoder = pipe.unet.eval(), pipe.vae.decoder.eval()
    expected_noise, expected_frames = tiny_denoise(unet), decode(pipe)
    blocks = [m for m in unet.modules() if isinstance(m, TemporalResnetBlock)]
    assert temporal_blocks.install(unet) == len(blocks) > 0
    assert all("forward" in m.__dict__ for m in blocks)
    assert torch.allclose(tiny_denoise(unet), expected_noise, atol=1e-5)
    assert len(taken) == 2 * len(blocks)  # two norms a block: the 2-D path ran
    variants = [(False, False, False), (True, False, True), (True, True, False), (False, True, True)]
    for rows, per_channel, in_3d in variants:  # norms_in_rows, per_channel, convs_in_3d
        vae_blocks = temporal_blocks.install(decoder, rows, per_channel, in_3d)
        assert vae_blocks == sum(isinstance(m, TemporalResnetBlock) for m in decoder.modules()) > 0
        norms = [m for m in decoder.modules() if isinstance(m, torch.nn.GroupNorm) and "forward" in m.__dict__]
        assert bool(norms) == rows  # the spatial group norms change only with norms_in_rows
        taken.clear()
        assert torch.allclose(decode(pipe), expected_frames, atol=1e-5)
        assert taken and set(taken) == {per_channel}
        temporal_blocks.uninstall(decoder)
    unet_fast.uninstall(unet)
    assert not any("forward" in m.__dict__ or "block_paths" in m.__dict__ for m in blocks)
    assert torch.equal(tiny_denoise(unet), expected_noise)
    reset_pipeline(pipe, unet, "cpu")
    assert torch.equal(decode(pipe), expected_frames)


@pytest.mark.parametrize("temporal", [False, True])
def test_unet_group_norms_per_channel_and_convs_in_3d_compute_what_diffusers_computes(temporal, compiling, monkeypatch):
    """`temporal`: the temporal blocks' norms per channel and their convolutions in channels-last-3d as well."""
    unet = build_tiny_pipeline().unet.eval()
    expected = tiny_denoise(unet)
    calls = spy_on_norms(monkeypatch)
    in_3d = []
    conv = temporal_blocks.conv_over_frames_in_3d
    monkeypatch.setattr(temporal_blocks, "conv_over_frames_in_3d", lambda x, c: in_3d.append(1) or conv(x, c))
    paths = FastPaths(
        temporal_blocks_2d=True,
        group_norms_per_channel=True,
        temporal_norms_per_channel=temporal,
        temporal_convs_3d=temporal,
    )
    unet_fast.install(unet, paths)
    assert torch.allclose(tiny_denoise(unet), expected, atol=1e-5)
    assert True in calls and all(calls) == temporal  # without `temporal`, the temporal blocks' norms per frame only
    assert bool(in_3d) == temporal
    tag = "temporal2d,tn-per-channel,tconv-3d,gn-per-channel" if temporal else "temporal2d,gn-per-channel"
    assert paths.tag() == tag
    unet_fast.uninstall(unet)
    calls.clear()
    assert torch.equal(tiny_denoise(unet), expected) and calls == []


def test_temporal_convolution_as_2d_is_the_3d_one(compiling):
    conv = torch.nn.Conv3d(16, 24, kernel_size=(3, 1, 1), padding=(1, 0, 0))
    x = temporal_input(channels=16, frames=7)
    assert temporal_blocks.frames_only(conv)
    assert torch.allclose(temporal_blocks.conv_over_frames(x, conv), conv(x), atol=1e-5)
    in_3d = temporal_blocks.conv_over_frames_in_3d(x, conv)
    assert in_3d.is_contiguous(memory_format=torch.channels_last_3d)  # cuDNN's NDHWC layout
    assert torch.allclose(in_3d, conv(x), atol=1e-5)
    assert conv.weight.is_contiguous()  # the module's own weight untouched
    for other in (
        torch.nn.Conv3d(16, 24, kernel_size=3, padding=1),  # spatial taps: not a frames-only convolution
        torch.nn.Conv3d(16, 24, kernel_size=(3, 1, 1), stride=(2, 1, 1)),
        torch.nn.Conv3d(16, 24, kernel_size=(3, 1, 1), padding=(1, 0, 0), padding_mode="circular"),
    ):
        assert not temporal_blocks.frames_only(other)
    block = TemporalResnetBlock(32, 32, temb_channels=None)
    block.conv1 = torch.nn.Conv3d(32, 32, kernel_size=3, padding=1)
    assert temporal_blocks.install(block) == 0 and "forward" not in block.__dict__  # left to diffusers


def test_taken_in_compiled_graphs_only(pipe, monkeypatch):
    """Eagerly (a run's first videos while its graphs build, an uncompiled `auto`), diffusers' own blocks run,
    exactly; a compiled graph traces the 2-D blocks as one graph."""
    unet = build_tiny_pipeline().unet.eval()
    expected = tiny_denoise(unet)
    unet_fast.install(unet, FastPaths(single_token_cross_attention=True, temporal_blocks_2d=True))
    taken = spy_on_norms(monkeypatch)
    assert torch.equal(tiny_denoise(unet), expected) and taken == []
    frames = decode(pipe)
    temporal_blocks.install(pipe.vae.decoder, norms_in_rows=True, per_channel=True, convs_in_3d=True)
    assert torch.equal(decode(pipe), frames) and taken == []
    reset_pipeline(pipe, pipe.unet, "cpu")
    # traced as one graph together with every other fast path
    every = FastPaths(
        True,
        fused_geglu=True,
        fused_qkv=True,
        temporal_blocks_2d=True,
        group_norms_per_channel=True,
        temporal_norms_per_channel=True,
        temporal_convs_3d=True,
    )
    unet_fast.install(unet, every)
    traced = torch.compile(unet, backend="aot_eager", fullgraph=True)
    assert torch.allclose(tiny_denoise(traced), expected, atol=1e-5) and taken


@pytest.mark.parametrize("rows", [False, True])
def test_installed_forwards_are_python_functions_bound_to_their_modules(rows):
    """torch 2.11's Dynamo traces a replaced `forward` only when it is a Python function bound to its module (a bound
    functools.partial stops it: "can't handle functions not implemented in python")."""
    tiny = build_tiny_pipeline()
    every = dict(fused_geglu=True, fused_qkv=True, temporal_blocks_2d=True, group_norms_per_channel=True)
    vae = dict(vae_norms_in_rows=rows, vae_norms_per_channel=rows, vae_convs_3d=rows)
    paths = FastPaths(single_token_cross_attention=True, **vae, **every)
    unet_fast.install(tiny.unet, paths)
    unet_fast.install_decoder(tiny.vae.decoder, paths)
    installed = [m.__dict__["forward"] for m in (*tiny.unet.modules(), *tiny.vae.modules()) if "forward" in m.__dict__]
    assert len(installed) > 2
    for forward in installed:
        assert isinstance(forward, types.MethodType) and isinstance(forward.__func__, types.FunctionType), forward


def test_the_vae_decoders_artifact_key_names_its_fast_paths(tmp_path):
    settings = compiled.CompileSettings(
        store=tmp_path, inductor_cache=tmp_path, model="tiny", device="cpu", device_name="cpu", dtype="float32"
    )
    signature = compiled.signature_of((torch.zeros(8, 4, 16, 16), torch.zeros(1, 8), 8))

    def vae_key(**paths) -> str:
        fields = compiled.key_fields(
            dataclasses.replace(settings, fast_paths=FastPaths(**paths)), "vae_decoder", {}, signature
        )
        return fields["fast_paths"]

    assert vae_key() == vae_key(single_token_cross_attention=True, fused_geglu=True) == "none"  # the UNet's own
    assert vae_key(temporal_blocks_2d=True) == "temporal2d"
    assert vae_key(temporal_blocks_2d=True, vae_norms_in_rows=True) == "temporal2d,norms-in-rows"
    assert vae_key(vae_norms_in_rows=True) == "none"  # only with the temporal blocks in 2-D
    every = dict(vae_norms_in_rows=True, vae_norms_per_channel=True, vae_convs_3d=True)
    assert vae_key(temporal_blocks_2d=True, **every) == "temporal2d,norms-in-rows,norms-per-channel,convs-3d"
    unet_own = dict(temporal_norms_per_channel=True, temporal_convs_3d=True)
    assert vae_key(temporal_blocks_2d=True, **unet_own) == "temporal2d"  # the UNet's own
    # the builder process remakes the decoder with the same computation
    plain = compiled._settings_from_json(compiled._settings_to_json(settings))
    assert plain == settings
    fast = dataclasses.replace(settings, fast_paths=FastPaths(temporal_blocks_2d=True, vae_norms_in_rows=True))
    assert compiled._settings_from_json(compiled._settings_to_json(fast)) == fast
    config = {k: v for k, v in build_tiny_pipeline().vae.config.items() if not k.startswith("_")}
    decoder = compiled.remake_module("vae", config, fast)
    assert all("forward" in m.__dict__ for m in decoder.modules() if isinstance(m, TemporalResnetBlock))
