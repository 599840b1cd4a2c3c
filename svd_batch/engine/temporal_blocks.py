"""SVD's temporal res blocks in the layout of the spatial ones: an exact fast path for compiled graphs.

Every `SpatioTemporalResBlock` of the UNet and of the VAE decoder runs a `TemporalResnetBlock` on a
(batch, channels, frames, height, width) view of the spatial block's (batch x frames, channels, height, width)
output. diffusers computes it with two `GroupNorm`s over (channels/32, frames, height, width) and two `Conv3d`s
with a (3, 1, 1) kernel. Compiled, that costs twice what the arithmetic needs (the per-kernel profile in
benchmarks/h100-2026-11-23c):
- each GroupNorm has one statistic per (batch, group), 64 in the UNet (CFG batch 2 x 32 groups) and 32 in the VAE
  decoder, so its reduction runs on 32-64 of the GPU's 132 processors, 2-5 ms a call at 320 channels;
- each Conv3d goes through cuDNN's NCDHW<->NDHWC conversion kernels (13.7 ms of a 438 ms step).
Here the same block gathers its statistics per (batch, group, frame), and per row too where that is still too few,
where each part's values lie together in memory, and combines them per group exactly (parts of equal size: the mean
of their variances plus the variance of their means); optionally per channel as well, which in the channels-last
memory Inductor gives convolutions reads whole rows instead of a group's few channels strided through every pixel
(group norms 0.23 s a video faster in the UNet's spatial blocks, another 0.11 s in its temporal blocks and the VAE
decoder, on an H200: benchmarks/h200-2026-12-02); each (k, 1, 1) Conv3d runs as a Conv2d with a (k, 1) kernel over
(frames, height x width), whose layout Inductor chooses and fuses into the kernel that produces its input (or,
optionally, as the Conv3d itself in the channels-last-3d memory that input already has). Same arithmetic, float32
statistics as `native_group_norm`: frames stay within float16 rounding (tests/test_temporal_blocks.py). Only
compiled graphs take this path: eagerly (the first videos of a run whose graphs are still being built,
`hardware=auto` when it does not compile) the blocks run as diffusers wrote them.
"""

from __future__ import annotations

import types
from typing import NamedTuple

import torch
import torch.nn.functional as F
from diffusers.models.resnet import TemporalResnetBlock

# statistics computed side by side: a few per multiprocessor (an H100 has 132) keep the GPU's memory busy
MIN_STATISTICS = 1024


def group_norm_in_parts(
    x: torch.Tensor, norm: torch.nn.GroupNorm, max_part_dims: int = 1, by_channel: bool = False
) -> torch.Tensor:
    """`norm(x)` for x of shape (batch, channels, *spatial), its statistics gathered in parts and combined: per
    (batch, group, leading spatial index), over as many leading spatial dimensions (at most `max_part_dims`: frames,
    then rows) as it takes to have MIN_STATISTICS of them, each part's values lying together in memory. With
    `by_channel`, per channel as well: in channels-last memory (compiled graphs around cuDNN's convolutions) a group's
    values are runs of a few channels strided through every pixel, while a per-channel reduction reads whole rows."""
    batch, channels, *spatial = x.shape
    groups = norm.num_groups
    grouped = x.float().reshape(batch, groups, channels // groups, *spatial)
    kept, count = 0, batch * (channels if by_channel else groups)
    while kept < min(max_part_dims, len(spatial) - 1) and count < MIN_STATISTICS:
        count *= spatial[kept]
        kept += 1
    parts = ((2,) if by_channel else ()) + tuple(range(3, 3 + kept))
    reduced = (() if by_channel else (2,)) + tuple(range(3 + kept, grouped.ndim))
    var_p, mean_p = torch.var_mean(grouped, dim=reduced, correction=0, keepdim=True)
    mean, var = mean_p, var_p
    if parts:  # parts of equal size: the mean of their variances plus the variance of their means
        mean = mean_p.mean(dim=parts, keepdim=True)
        var = (var_p + (mean_p - mean).square()).mean(dim=parts, keepdim=True)
    normed = ((grouped - mean) * torch.rsqrt(var + norm.eps)).reshape(x.shape)
    if norm.affine:
        affine_shape = (1, channels) + (1,) * len(spatial)
        normed = normed * norm.weight.float().view(affine_shape) + norm.bias.float().view(affine_shape)
    return normed.to(x.dtype)


def conv_over_frames(x: torch.Tensor, conv: torch.nn.Conv3d) -> torch.Tensor:
    """`conv(x)` for a Conv3d whose kernel spans frames only, as a Conv2d over (frames, height x width)."""
    batch, _, frames, height, width = x.shape
    weight = conv.weight.flatten(3)  # (out, in, k, 1, 1) -> (out, in, k, 1)
    out = F.conv2d(x.flatten(3), weight, conv.bias, padding=(conv.padding[0], 0))
    return out.unflatten(3, (height, width))


def conv_over_frames_in_3d(x: torch.Tensor, conv: torch.nn.Conv3d) -> torch.Tensor:
    """`conv(x)` with x and the weight in channels-last-3d memory, the layout x already has in compiled graphs (a
    (batch, channels, frames, ...) view of frame-major channels-last activations): cuDNN's NDHWC kernels, without the
    layout conversions of a contiguous Conv3d or the generic kernel cuDNN picks for `conv_over_frames`' one
    (frames x 589824)-pixel image at the VAE decoder's full resolution (eager on an H200: 2.7 ms a call in 3-D, against
    4.9 ms of that kernel a call in the compiled decode; benchmarks/h200-2026-12-02)."""
    layout = torch.channels_last_3d
    weight = conv.weight.contiguous(memory_format=layout)
    return F.conv3d(x.contiguous(memory_format=layout), weight, conv.bias, padding=conv.padding)


def frames_only(conv: torch.nn.Conv3d | None) -> bool:
    """Whether `conv_over_frames` computes exactly what this Conv3d does."""
    # padding "same" / "valid" is a string: padded as torch decides, not as given
    return conv is None or (
        not isinstance(conv.padding, str)
        and conv.kernel_size[1:] == (1, 1)
        and conv.stride == (1, 1, 1)
        and conv.dilation == (1, 1, 1)
        and conv.groups == 1
        and tuple(conv.padding[1:]) == (0, 0)
        and conv.padding_mode == "zeros"
    )


class BlockPaths(NamedTuple):
    """How an installed temporal res block computes: its norms' parts (`group_norm_in_parts`), its convolutions."""

    max_part_dims: int = 1  # frames; 2: rows too where per frame is still too few statistics
    by_channel: bool = False
    convs_in_3d: bool = False  # `conv_over_frames_in_3d` instead of `conv_over_frames`


def _forward(self: TemporalResnetBlock, input_tensor: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
    """`TemporalResnetBlock.forward`, step for step, with the functions above (norms and convolutions as
    `self.block_paths` says), inside compiled graphs; run eagerly, diffusers' own computation, whose fused GroupNorm
    and Conv3d kernels are the faster ones there."""
    if not torch.compiler.is_compiling():
        return TemporalResnetBlock.forward(self, input_tensor, temb)
    paths: BlockPaths = self.block_paths
    conv = conv_over_frames_in_3d if paths.convs_in_3d else conv_over_frames

    def norm(x: torch.Tensor, module: torch.nn.GroupNorm) -> torch.Tensor:
        return group_norm_in_parts(x, module, paths.max_part_dims, paths.by_channel)

    hidden_states = conv(self.nonlinearity(norm(input_tensor, self.norm1)), self.conv1)
    if self.time_emb_proj is not None:
        temb = self.time_emb_proj(self.nonlinearity(temb))[:, :, :, None, None]
        hidden_states = hidden_states + temb.permute(0, 2, 1, 3, 4)
    hidden_states = self.dropout(self.nonlinearity(norm(hidden_states, self.norm2)))
    hidden_states = conv(hidden_states, self.conv2)
    if self.conv_shortcut is not None:
        input_tensor = conv(input_tensor, self.conv_shortcut)
    return input_tensor + hidden_states


def _group_norm_forward(self: torch.nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """Statistics in parts (per row; with `self.block_paths.by_channel`, per channel) inside compiled graphs; eagerly
    (and for (batch, channels, length) inputs) torch's own."""
    if x.ndim < 4 or not torch.compiler.is_compiling():
        return torch.nn.GroupNorm.forward(self, x)
    return group_norm_in_parts(x, self, max_part_dims=x.ndim - 3, by_channel=self.block_paths.by_channel)


def _group_norm_per_channel_forward(self: torch.nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """Statistics per channel, combined per group, inside compiled graphs; eagerly torch's own."""
    if x.ndim < 3 or not torch.compiler.is_compiling():
        return torch.nn.GroupNorm.forward(self, x)
    return group_norm_in_parts(x, self, max_part_dims=0, by_channel=True)


def install_per_channel_norms(model: torch.nn.Module) -> int:
    """Every GroupNorm that `model` calls as a module (the UNet's spatial res blocks and transformer inputs; the
    temporal res blocks installed by `install` compute theirs as their `block_paths` say) with statistics per
    channel, combined per group. Returns how many."""
    norms = [module for module in model.modules() if isinstance(module, torch.nn.GroupNorm)]
    for norm in norms:
        norm.forward = types.MethodType(_group_norm_per_channel_forward, norm)
    return len(norms)


def install(
    model: torch.nn.Module, norms_in_rows: bool = False, per_channel: bool = False, convs_in_3d: bool = False
) -> int:
    """Switches every eligible temporal res block in `model` to the 2-D computation (statistics per frame); with
    `norms_in_rows`, per row too where per frame is still too few, and every other GroupNorm of `model` with
    statistics in parts as well (the VAE decoder's have one statistic per (frame, group): 256 for an 8-frame chunk);
    with `per_channel`, those statistics per channel as well, combined per group; with `convs_in_3d`, the blocks'
    convolutions in channels-last-3d memory. Returns how many blocks. `uninstall` switches them back."""
    paths = BlockPaths(2 if norms_in_rows else 1, per_channel, convs_in_3d)
    count = 0
    for module in model.modules():
        if isinstance(module, TemporalResnetBlock) and all(
            frames_only(conv) for conv in (module.conv1, module.conv2, module.conv_shortcut)
        ):
            # plain functions, not a functools.partial: torch 2.11's Dynamo cannot trace a method made of a partial
            module.forward = types.MethodType(_forward, module)
            module.block_paths = paths
            count += 1
        elif norms_in_rows and isinstance(module, torch.nn.GroupNorm):
            module.forward = types.MethodType(_group_norm_forward, module)
            module.block_paths = paths
    return count


def uninstall(model: torch.nn.Module) -> None:
    """Back to diffusers' own temporal res blocks and group norms."""
    for module in model.modules():
        if isinstance(module, (TemporalResnetBlock, torch.nn.GroupNorm)):
            module.__dict__.pop("forward", None)
            module.__dict__.pop("block_paths", None)
