"""Exact fast paths for SVD's UNet, installed on a loaded model and removable again.

Six levers, each switchable in the hardware profile and measured alone by the benchmark:
- cross-attention to a single token: SVD's cross-attention layers (spatial and temporal) attend to one CLIP image
  token. Softmax over one key is exactly 1, so every query receives that token's projected value unchanged: the
  layer's output is `to_out(to_v(context))`, broadcast. The query projection, the attention call and (once
  compiled, as dead code) the LayerNorm before them disappear;
- the attention backend per layer kind: the temporal layers attend over 14-25 frames at each of thousands of
  positions, a shape where the memory-efficient kernel is about twice as fast as flash on an H100; the spatial
  layers attend over thousands of positions, where torch's own choice is cuDNN on Hopper, and FlashAttention-4
  (svd_batch.engine.flash_attention, an optional package) is the other candidate;
- self-attention's query, key and value projections as one matrix multiply over the stacked weights: the same dot
  products, the input read once instead of three times;
- GEGLU feed-forward: one Triton kernel computes both halves of the projection and multiplies them through GELU
  (svd_batch.engine.kernels), so the 8C-wide intermediate never reaches GPU memory;
- the temporal res blocks with per-frame norm statistics and 2-D convolutions (svd_batch.engine.temporal_blocks,
  which the VAE decoder's blocks get too), optionally with those statistics per channel as well and the
  convolutions as Conv3d in channels-last-3d memory;
- the other group norms with statistics per channel, combined per group (svd_batch.engine.temporal_blocks).
Frames stay within float16 rounding of diffusers' own computation (tests/test_unet_fast.py; the bench measures it).
"""

from __future__ import annotations

import functools
import logging
import types

import torch
import torch.nn.functional as F
from diffusers.models.activations import GEGLU
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch.nn.attention import SDPBackend, sdpa_kernel

from svd_batch.config import AttentionBackend
from svd_batch.engine import flash_attention, temporal_blocks
from svd_batch.engine.hardware import FastPaths
from svd_batch.engine.kernels import geglu, geglu_reference

log = logging.getLogger(__name__)

SDPA_BACKENDS = {
    AttentionBackend.efficient: SDPBackend.EFFICIENT_ATTENTION,
    AttentionBackend.flash: SDPBackend.FLASH_ATTENTION,
    AttentionBackend.cudnn: SDPBackend.CUDNN_ATTENTION,
    AttentionBackend.math: SDPBackend.MATH,
}


class SVDAttnProcessor:
    """`AttnProcessor2_0`'s computation for SVD's attention layers (no masks, norms or residuals inside the layer,
    which `install` checks), with a chosen SDPA backend and the single-token cross-attention shortcut."""

    def __init__(self, backend: AttentionBackend | None, single_token_shortcut: bool, fused_qkv: bool = False):
        self.backend = backend or AttentionBackend.default
        self.single_token_shortcut = single_token_shortcut
        self.fused_qkv = fused_qkv

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        if attention_mask is not None or hidden_states.ndim != 3:  # not SVD's layers: diffusers' own path
            return AttnProcessor2_0()(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if self.single_token_shortcut and encoder_hidden_states is not None and context.shape[1] == 1:
            # softmax over one key is exactly 1: each query's output is that key's value
            value = attn.to_out[1](attn.to_out[0](attn.to_v(context)))
            return value.expand(-1, hidden_states.shape[1], -1)

        batch = hidden_states.shape[0]
        if self.fused_qkv and encoder_hidden_states is None:
            query, key, value = fused_projections(attn, hidden_states)
        else:
            query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (t.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for t in (query, key, value))
        out = attention(query, key, value, self.backend)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


def fused_projections(attn: Attention, hidden_states: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Self-attention's query, key and value from one matrix multiply over the three weights stacked: each output is
    the same dot product, and the input is read once. The stacked weight (at most 10 MB) is made at each call: in a
    compiled graph the weights are inputs, and a stored copy would double them in memory."""
    layers = (attn.to_q, attn.to_k, attn.to_v)
    weight = torch.cat([layer.weight for layer in layers])
    bias = None if attn.to_q.bias is None else torch.cat([layer.bias for layer in layers])
    return F.linear(hidden_states, weight, bias).chunk(3, dim=-1)


def _stackable(attn: Attention) -> bool:
    """Whether the three projections are linear maps of the same input width, all with or all without a bias."""
    layers = (attn.to_q, attn.to_k, attn.to_v)
    return all(isinstance(layer, torch.nn.Linear) for layer in layers) and (
        len({layer.in_features for layer in layers}) == 1 and len({layer.bias is None for layer in layers}) == 1
    )


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, backend: AttentionBackend) -> torch.Tensor:
    """Scaled dot-product attention of (batch, heads, tokens, head dim) views on `backend`. The efficient and flash
    kernels are called as the ops themselves, which compiled graphs keep as they are; FlashAttention-4 on the
    (batch, tokens, heads, head dim) layout the views come from (no copy); the others through sdpa_kernel."""
    if backend is AttentionBackend.fa4:
        heads_last = (t.transpose(1, 2) for t in (query, key, value))
        return flash_attention.flash_attention_4(*heads_last).transpose(1, 2)
    if backend is AttentionBackend.efficient:
        return torch.ops.aten._scaled_dot_product_efficient_attention(query, key, value, None, False)[0]
    if backend is AttentionBackend.flash:
        return torch.ops.aten._scaled_dot_product_flash_attention(query, key, value)[0]
    if backend is AttentionBackend.default:
        return F.scaled_dot_product_attention(query, key, value)
    with sdpa_kernel(SDPA_BACKENDS[backend]):
        return F.scaled_dot_product_attention(query, key, value)


def _plain_layer(attn: Attention) -> bool:
    """True for layers whose computation SVDAttnProcessor reproduces exactly."""
    return (
        attn.spatial_norm is None
        and attn.group_norm is None
        and not getattr(attn, "norm_cross", None)
        and attn.norm_q is None
        and attn.norm_k is None
        and not attn.residual_connection
        and attn.rescale_output_factor == 1.0
    )


def backend_works(backend: AttentionBackend, device: torch.device, dtype: torch.dtype, head_dim: int) -> bool:
    """Whether this torch and device run `backend` for a frame-axis-like shape (cuDNN and flash need recent GPUs)."""
    if backend is AttentionBackend.default:
        return True
    # laid out as the processor's views are: (batch, tokens, heads x dim) seen as (batch, heads, tokens, dim)
    q = torch.randn(3, 25, 2 * head_dim, device=device, dtype=dtype).view(3, 25, 2, head_dim).transpose(1, 2)
    try:
        out = attention(q, q, q, backend)
    except (RuntimeError, NotImplementedError):
        return False
    return torch.allclose(out.float(), F.scaled_dot_product_attention(q.float(), q.float(), q.float()), atol=1e-2)


@functools.cache
def geglu_runs_here(device: torch.device, dtype: torch.dtype) -> bool:
    """The fused GEGLU kernel against the plain computation on a small input, on this device (once a process): a
    Triton or driver problem turns the lever off with a warning instead of failing every video. Elsewhere the op
    computes the plain GEGLU itself."""
    if device.type != "cuda":
        return True
    x = torch.randn(64, 64, device=device, dtype=dtype)
    weight, bias = torch.randn(256, 64, device=device, dtype=dtype) / 8, torch.randn(256, device=device, dtype=dtype)
    try:
        out = geglu(x, weight, bias)
    except Exception as exc:  # any failure of the kernel means: do not use it here
        log.warning("fused GEGLU does not run here (%s): using diffusers' GEGLU", exc)
        return False
    expected = geglu_reference(x.float(), weight.float(), bias.float())
    if not torch.allclose(out.float(), expected, atol=3e-2, rtol=3e-2):
        log.warning("fused GEGLU differs from diffusers' GEGLU here: using diffusers' GEGLU")
        return False
    return True


def _fused_geglu_forward(self: GEGLU, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    # checked at the first eager call; a graph being compiled cannot run the check, so whatever compiles it checks
    # first (check_fused_kernels)
    if torch.compiler.is_compiling() or geglu_runs_here(hidden_states.device, hidden_states.dtype):
        return geglu(hidden_states, self.proj.weight, self.proj.bias)
    return GEGLU.forward(self, hidden_states, *args, **kwargs)


def check_fused_kernels(module: torch.nn.Module) -> None:
    """Runs the fused GEGLU's check now, before `module` is compiled, and puts diffusers' GEGLU back where the
    kernel does not run."""
    fused = [m for m in module.modules() if isinstance(m, GEGLU) and "forward" in m.__dict__]
    if fused and not geglu_runs_here(fused[0].proj.weight.device, fused[0].proj.weight.dtype):
        for layer in fused:
            layer.__dict__.pop("forward")


def install(unet: torch.nn.Module, paths: FastPaths, check_kernels: bool = True) -> None:
    """Installs the chosen fast paths on `unet` in place (`uninstall` restores diffusers' computation).
    `check_kernels=False` leaves the fused kernel's check to its first eager call: a process that only runs compiled
    graphs loaded from artifacts (whose builder checked it) then never launches the kernel through Triton's
    just-in-time path (about 0.5 s of a warm start on an H200)."""
    param = next(unet.parameters())
    backends = {}
    for kind in ("temporal", "spatial"):
        backend = getattr(paths, f"{kind}_attention")
        if backend is AttentionBackend.fa4:  # an optional package for some GPUs: the profile runs as without it
            if reason := flash_attention.unavailable_reason(param.device):
                log.info("%s attention: FlashAttention-4 does not run here (%s); torch picks instead", kind, reason)
                backend = AttentionBackend.default
            else:  # imported and loaded on a thread: the op's first call waits for it
                flash_attention.start_loading(param.device, param.dtype)
        elif not backend_works(backend, param.device, param.dtype, head_dim=64):
            log.warning("%s attention: the %s backend does not run here; torch picks instead", kind, backend.value)
            backend = AttentionBackend.default
        backends[kind] = backend

    custom = paths.single_token_cross_attention or paths.fused_qkv
    if custom or any(b is not AttentionBackend.default for b in backends.values()):
        layers = dict(unet.named_modules())
        processors = {}
        for name, processor in unet.attn_processors.items():
            layer = layers[name.removesuffix(".processor")]
            kind = "temporal" if "temporal_transformer_blocks" in name else "spatial"
            if isinstance(layer, Attention) and _plain_layer(layer):
                fused_qkv = paths.fused_qkv and _stackable(layer)  # decided once per layer, not per call
                processor = SVDAttnProcessor(backends[kind], paths.single_token_cross_attention, fused_qkv)
            processors[name] = processor
        unet.set_attn_processor(processors)

    if paths.fused_geglu:
        for module in unet.modules():
            if isinstance(module, GEGLU):
                module.forward = types.MethodType(_fused_geglu_forward, module)
        if check_kernels:
            check_fused_kernels(unet)

    if paths.temporal_blocks_2d:
        temporal_blocks.install(unet, per_channel=paths.temporal_norms_per_channel, convs_in_3d=paths.temporal_convs_3d)
    if paths.group_norms_per_channel:
        temporal_blocks.install_per_channel_norms(unet)


def install_decoder(decoder: torch.nn.Module, paths: FastPaths) -> None:
    """The VAE decoder's share of the fast paths (`FastPaths.vae_tag`): its temporal res blocks in 2-D."""
    if paths.temporal_blocks_2d:
        temporal_blocks.install(decoder, paths.vae_norms_in_rows, paths.vae_norms_per_channel, paths.vae_convs_3d)


def uninstall(unet: torch.nn.Module) -> None:
    """Back to diffusers' own attention processors, GEGLU, group norms and temporal res blocks."""
    unet.set_attn_processor(AttnProcessor2_0())
    temporal_blocks.uninstall(unet)
    for module in unet.modules():
        if isinstance(module, GEGLU):
            module.__dict__.pop("forward", None)
