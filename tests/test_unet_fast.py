"""The UNet's exact fast paths on the tiny model: same output as diffusers, each lever really taken, removable."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor2_0

from svd_batch.config import AttentionBackend
from svd_batch.engine import flash_attention, unet_fast
from svd_batch.engine.hardware import FastPaths
from svd_batch.engine.kernels import geglu, geglu_reference
from svd_batch.engine.models import build_tiny_pipeline
from tests.conftest import REPO

ALL = FastPaths(single_token_cross_attention=True, fused_geglu=True, fused_qkv=True)


@pytest.fixture
def unet():
    return build_tiny_pipeline().unet.eval()


def unet_inputs(batch: int = 2):
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(batch, 6, 8, 16, 16, generator=generator)
    context = torch.randn(batch, 1, 32, generator=generator)  # SVD's single CLIP image token
    return sample, torch.tensor(0.7), context, torch.tensor([[6.0, 127.0, 0.02]] * batch)


@torch.no_grad()
def denoise(unet) -> torch.Tensor:
    sample, t, context, time_ids = unet_inputs()
    return unet(sample, t, encoder_hidden_states=context, added_time_ids=time_ids, return_dict=False)[0]


def test_fast_paths_compute_what_diffusers_computes_and_come_off_again(unet):
    expected = denoise(unet)
    unet_fast.install(unet, ALL)
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"SVDAttnProcessor"}
    fast = denoise(unet)
    assert torch.allclose(fast, expected, atol=1e-5, rtol=1e-5)
    unet_fast.uninstall(unet)
    assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())
    assert torch.equal(denoise(unet), expected)


def test_single_token_cross_attention_skips_the_query_projection_and_attention(unet, monkeypatch):
    cross = [m for name, m in unet.named_modules() if name.endswith("attn2")]
    queries = []
    for layer in cross:
        layer.to_q.register_forward_hook(lambda *_: queries.append(1))
    denoise(unet)
    assert len(queries) == len(cross)  # diffusers projects every query, for one key
    queries.clear()
    attended, attention = [], unet_fast.attention
    monkeypatch.setattr(
        unet_fast, "attention", lambda q, k, v, backend: attended.append(k.shape) or attention(q, k, v, backend)
    )
    unet_fast.install(unet, FastPaths(single_token_cross_attention=True))
    denoise(unet)
    assert queries == []
    assert all(shape[-2] > 1 for shape in attended) and len(attended) == len(cross)  # self-attention only (1 per attn1)
    # a context of several tokens is real attention: the shortcut does not apply
    processor = unet_fast.SVDAttnProcessor(None, single_token_shortcut=True)
    layer, hidden = cross[0], torch.randn(2, 5, cross[0].to_q.in_features)
    context = torch.randn(2, 3, cross[0].to_k.in_features)
    assert torch.allclose(processor(layer, hidden, context), AttnProcessor2_0()(layer, hidden, context), atol=1e-6)


def test_fused_geglu_replaces_each_feed_forward_projection(unet, monkeypatch):
    calls = []
    monkeypatch.setattr(unet_fast, "geglu", lambda x, w, b: calls.append(x.shape) or geglu(x, w, b))
    expected = denoise(unet)
    unet_fast.install(unet, FastPaths(fused_geglu=True))
    assert torch.allclose(denoise(unet), expected, atol=1e-6)
    feed_forwards = sum(type(m).__name__ == "GEGLU" for m in unet.modules())
    assert len(calls) == feed_forwards > 0


def test_a_fused_kernel_that_does_not_run_here_leaves_diffusers_geglu(unet, monkeypatch):
    checked = []
    monkeypatch.setattr(unet_fast, "geglu_runs_here", lambda device, dtype: checked.append(device) or False)
    monkeypatch.setattr(unet_fast, "geglu", lambda x, w, b: pytest.fail("the fused op ran although its check failed"))
    expected = denoise(unet)
    unet_fast.install(unet, FastPaths(fused_geglu=True))
    assert checked == [torch.device("cpu")]  # checked at install, once
    assert not any("forward" in vars(m) for m in unet.modules() if type(m).__name__ == "GEGLU")
    assert torch.allclose(denoise(unet), expected, atol=1e-6)


def test_the_fused_kernel_is_checked_at_its_first_eager_call_where_compiled_graphs_will_run_it(unet, monkeypatch):
    checked = []
    monkeypatch.setattr(unet_fast, "geglu_runs_here", lambda device, dtype: checked.append(device) or False)
    monkeypatch.setattr(unet_fast, "geglu", lambda x, w, b: pytest.fail("the fused op ran although its check failed"))
    expected = denoise(unet)
    unet_fast.install(unet, FastPaths(fused_geglu=True), check_kernels=False)
    assert checked == []  # a process that only loads compiled graphs never launches the kernel through Triton's JIT
    assert torch.allclose(denoise(unet), expected, atol=1e-6)  # an eager call checks, and falls back to diffusers
    assert len(checked) == sum(type(m).__name__ == "GEGLU" for m in unet.modules()) > 0
    unet_fast.check_fused_kernels(unet)  # what compiling runs first: a graph being traced cannot check
    assert not any("forward" in vars(m) for m in unet.modules() if type(m).__name__ == "GEGLU")


def test_fused_qkv_projects_each_self_attention_input_once(unet, monkeypatch):
    self_attention = [m for name, m in unet.named_modules() if name.endswith("attn1")]
    separate = []
    for layer in self_attention:
        for projection in (layer.to_q, layer.to_k, layer.to_v):
            projection.register_forward_hook(lambda *_: separate.append(1))
    expected = denoise(unet)
    assert len(separate) == 3 * len(self_attention) > 0
    separate.clear()
    fused, project = [], unet_fast.fused_projections
    monkeypatch.setattr(unet_fast, "fused_projections", lambda a, h: fused.append(a) or project(a, h))
    unet_fast.install(unet, FastPaths(fused_qkv=True))
    assert torch.allclose(denoise(unet), expected, atol=1e-5, rtol=1e-5)
    assert separate == [] and len(fused) == len(self_attention)  # one stacked projection a layer, none apart
    # cross-attention (attn2) keeps its own projections: its keys and values come from the image token
    processor = unet_fast.SVDAttnProcessor(None, single_token_shortcut=False, fused_qkv=True)
    layer = next(m for name, m in unet.named_modules() if name.endswith("attn2"))
    hidden, context = torch.randn(2, 5, layer.to_q.in_features), torch.randn(2, 3, layer.to_k.in_features)
    assert torch.allclose(processor(layer, hidden, context), AttnProcessor2_0()(layer, hidden, context), atol=1e-6)
    assert FastPaths(fused_qkv=True).tag() == "qkv"


def test_an_attention_backend_that_does_not_run_here_falls_back_with_a_warning(unet, caplog):
    assert not unet_fast.backend_works(AttentionBackend.efficient, torch.device("cpu"), torch.float32, 64)
    unet_fast.install(unet, FastPaths(temporal_attention=AttentionBackend.efficient))
    assert "the efficient backend does not run here" in caplog.text
    assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())  # nothing left to change


def stand_in_flash_attention_4(calls: list):
    """What flash-attn-4's `flash_attn_func` computes, on its (batch, tokens, heads, head dim) layout, by SDPA."""

    def flash_attn_func(q, k, v):
        calls.append(q.shape)
        assert q.shape == k.shape == v.shape and q.stride(-1) == 1  # the projections' layout, no copy made for it
        out = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(1, 2)
        return out.contiguous(), None

    return flash_attn_func


def test_flash_attention_4_runs_the_spatial_self_attention_on_the_projections_layout(unet, monkeypatch):
    calls = []
    monkeypatch.setattr(flash_attention, "_flash_attn_func", lambda: stand_in_flash_attention_4(calls))
    monkeypatch.setattr(flash_attention, "unavailable_reason", lambda device: None)
    monkeypatch.setattr(flash_attention, "_loading", {})
    expected = denoise(unet)
    unet_fast.install(unet, ALL.__class__(**{**vars(ALL), "spatial_attention": AttentionBackend.fa4}))
    flash_attention._loading[(torch.device("cpu"), torch.float32)].result()  # loaded on its thread at install
    assert calls == [(1, 256, 1, 64)]  # the warm-up call: the kernel compiled (or loaded) before the first step
    calls.clear()
    assert torch.allclose(denoise(unet), expected, atol=1e-5, rtol=1e-5)
    spatial = [n for n in unet.attn_processors if n.endswith("attn1.processor") and "temporal" not in n]
    assert len(calls) == len(spatial) > 0  # the temporal layers keep torch's choice; cross-attention its shortcut
    assert FastPaths(spatial_attention=AttentionBackend.fa4).tag() == "spatial=fa4"  # part of the artifact key


def test_flash_attention_4_is_one_opaque_op_in_a_compiled_graph(monkeypatch):
    """Dynamo keeps the op whole (its fake implementation gives the output's shape), so a graph compiles without a
    break and its artifact calls FlashAttention-4's own kernel."""
    calls = []
    monkeypatch.setattr(flash_attention, "_flash_attn_func", lambda: stand_in_flash_attention_4(calls))
    q, k, v = (torch.randn(2, 40, 3, 16).transpose(1, 2) for _ in range(3))  # (batch, heads, tokens, dim) views
    compiled = torch.compile(
        lambda q, k, v: unet_fast.attention(q, k, v, AttentionBackend.fa4) * 2, backend="aot_eager", fullgraph=True
    )
    assert torch.allclose(compiled(q, k, v), 2 * F.scaled_dot_product_attention(q, k, v), atol=1e-5)
    assert calls == [(2, 40, 3, 16)]


def test_flash_attention_4_that_failed_to_load_says_so_and_names_the_fix(monkeypatch):
    def broken():
        raise ImportError("libcute_dsl_runtime.so: cannot open shared object file")

    monkeypatch.setattr(flash_attention, "_flash_attn_func", broken)
    monkeypatch.setattr(flash_attention, "_loading", {})
    flash_attention.start_loading(torch.device("cpu"), torch.float32)
    q = torch.randn(1, 8, 1, 16)
    with pytest.raises(RuntimeError, match="did not load .*libcute_dsl.*hardware.spatial_attention=default"):
        flash_attention.flash_attention_4(q, q, q)


def test_flash_attention_4_where_it_cannot_run_leaves_torchs_choice(unet, caplog):
    caplog.set_level(logging.INFO)
    assert flash_attention.unavailable_reason(torch.device("cpu")) == "it needs a CUDA GPU"
    unet_fast.install(unet, FastPaths(spatial_attention=AttentionBackend.fa4))
    assert "spatial attention: FlashAttention-4 does not run here (it needs a CUDA GPU); torch picks" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # optional: the log says so, no warning
    assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())


def test_geglu_op_returns_a_new_tensor():
    """Why compiled graphs may skip torch's first-call aliasing check of custom ops (prepare_pipeline)."""
    x, weight, bias = torch.randn(2, 5, 8), torch.randn(12, 8), torch.randn(12)
    out = geglu(x, weight, bias)
    inputs = {t.untyped_storage().data_ptr() for t in (x, weight, bias)}
    assert out.untyped_storage().data_ptr() not in inputs and torch.allclose(out, geglu_reference(x, weight, bias))


def test_geglu_op_is_seen_through_by_the_compiler():
    """Dynamo keeps the op as one call; the compiler behind it (inductor, here a capturing backend) gets the op's
    implementation, not an opaque call: on a GPU, the Triton kernel itself, compiled into the saved artifact."""
    from torch._dynamo.backends.common import aot_autograd

    graphs = []

    def capture(graph, example_inputs):
        graphs.append(graph)
        return graph

    x, weight, bias = torch.randn(3, 7, 16), torch.randn(48, 16), torch.randn(48)
    compiled = torch.compile(geglu, backend=aot_autograd(fw_compiler=capture), fullgraph=True)
    assert torch.allclose(compiled(x, weight, bias), geglu_reference(x, weight, bias))
    assert compiled(x, weight, bias).shape == (3, 7, 24)
    ops = {str(node.target) for node in graphs[0].graph.nodes if node.op == "call_function"}
    assert not any("svd_batch" in op for op in ops) and any("gelu" in op for op in ops)


def test_triton_geglu_kernel_matches_diffusers_geglu_in_the_interpreter():
    """The GPU kernel's arithmetic, run by Triton's CPU interpreter: ragged sizes exercise every mask."""
    pytest.importorskip("triton")
    code = (
        "import torch\n"
        "from svd_batch.engine.kernels import geglu_reference, geglu_triton\n"
        "torch.manual_seed(0)\n"
        "for m, k, n, bias in [(200, 64, 96, True), (130, 40, 64, False), (70, 24, 40, True)]:\n"
        "    x, w = torch.randn(m, k), torch.randn(2 * n, k) / 8\n"
        "    b = torch.randn(2 * n) if bias else None\n"
        "    out = geglu_triton(x, w, b, tile=(32, 32, 16, 4, 1))\n"
        "    assert out.shape == (m, n), out.shape\n"
        "    err = (out - geglu_reference(x, w, b)).abs().max().item()\n"
        "    assert err < 1e-4, err\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
