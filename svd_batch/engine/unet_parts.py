"""SVD's UNet forward cut into consecutive parts, each compiled to a graph of its own by a builder of its own.

A cold start compiled the whole UNet as one graph in one builder process: 99 s of a 160 s build on the H200, most of
it single-threaded tracing and lowering (benchmarks/h200-2026-12-02f), while the first videos rendered eagerly at
1.5x the compiled time. Cut into N parts of about equal size, the N graphs are traced and compiled by N processes at
once. Each part hands the next what the rest of the forward reads (the hidden states, the embeddings, the skip
connections), so the computation is the UNet's own, op for op; a step runs N graphs instead of one.

The forward is a sequence of stages: the embeddings and conv_in, each down block, the mid block, each up block, and
the output convolution. The cuts balance an estimate of each stage's compile work: its res blocks, and its attention
blocks (a spatial and a temporal transformer each) counted 2.5 times.
"""

from __future__ import annotations

import re

import torch

from svd_batch.engine.artifacts import unet_part_name
from svd_batch.engine.step_cache import block_inputs, embed_conditioning

ATTENTION_WEIGHT = 2.5  # a transformer block's compile work against a res block's
EDGE_WEIGHT = 0.5  # the embeddings and conv_in; the output norm and convolution


def parse_part_name(name: str) -> tuple[int, int] | None:
    """(index, parts) of a part's name; None for any other name."""
    match = re.fullmatch(r"unet_part(\d+)of(\d+)", name)
    return (int(match[1]) - 1, int(match[2])) if match else None


def stage_costs(unet) -> list[float]:
    def cost(block) -> float:
        return len(block.resnets) + ATTENTION_WEIGHT * len(getattr(block, "attentions", ()))

    return [EDGE_WEIGHT, *map(cost, unet.down_blocks), cost(unet.mid_block), *map(cost, unet.up_blocks), EDGE_WEIGHT]


def _bounds(costs: tuple[float, ...], parts: int) -> tuple[tuple[int, int], ...]:
    total, cuts, running = sum(costs), [0], 0.0
    ends = []  # cumulative cost after each stage
    for c in costs:
        running += c
        ends.append(running)
    for k in range(1, parts):
        target = total * k / parts
        # the stage boundary nearest the target, after the previous cut and leaving a stage for each later part
        candidates = range(cuts[-1] + 1, len(costs) - (parts - k) + 1)
        cuts.append(min(candidates, key=lambda end: abs(ends[end - 1] - target)))
    cuts.append(len(costs))
    return tuple(zip(cuts[:-1], cuts[1:], strict=True))


def part_bounds(unet, parts: int) -> tuple[tuple[int, int], ...]:
    """Each part's stages as [first, end) indices into the stage sequence."""
    costs = tuple(stage_costs(unet))
    if not 1 <= parts <= len(costs):
        raise ValueError(f"a UNet of {len(costs)} stages cannot be cut into {parts} parts")
    return _bounds(costs, parts)


def run_part(unet, index: int, parts: int, *args: torch.Tensor):
    """Part `index` of `parts`. The first takes the UNet's inputs (sample, timestep, encoder_hidden_states,
    added_time_ids); the last returns its output; each other returns (hidden, emb, context, indicator, *skips), the
    next one's inputs."""
    return run_stages(unet, *part_bounds(unet, parts)[index], *args)


def run_stages(unet, first: int, end: int, *args: torch.Tensor):
    """Stages [first, end) of the forward (see run_part)."""
    downs, ups = len(unet.down_blocks), len(unet.up_blocks)
    if first == 0:
        sample, timestep, encoder_hidden_states, added_time_ids = args
        emb, context, indicator = embed_conditioning(unet, sample, timestep, encoder_hidden_states, added_time_ids)
        hidden = unet.conv_in(sample.flatten(0, 1))
        skips: tuple[torch.Tensor, ...] = (hidden,)
        first = 1
    else:
        hidden, emb, context, indicator, *rest = args
        skips = tuple(rest)
    for stage in range(first, end):
        if stage <= downs:  # a down block: its outputs join the skips
            block = unet.down_blocks[stage - 1]
            hidden, block_skips = block(**block_inputs(block, hidden, emb, context, indicator))
            skips += block_skips
        elif stage == downs + 1:
            hidden = unet.mid_block(**block_inputs(unet.mid_block, hidden, emb, context, indicator))
        elif stage <= downs + 1 + ups:  # an up block reads as many skips as it has res blocks, the last first
            block = unet.up_blocks[stage - downs - 2]
            block_skips, skips = skips[-len(block.resnets) :], skips[: -len(block.resnets)]
            hidden = block(res_hidden_states_tuple=block_skips, **block_inputs(block, hidden, emb, context, indicator))
        else:  # the output
            hidden = unet.conv_out(unet.conv_act(unet.conv_norm_out(hidden)))
            return hidden.reshape(*indicator.shape, *hidden.shape[1:])
    return (hidden, emb, context, indicator, *skips)


def part_function(unet, index: int, parts: int):
    """Part `index` of `parts` of this UNet's forward as a function of a UNet (this one or one of the same structure)
    and the part's inputs: what gets compiled. Its stages are fixed here, so the traced code is the blocks' only."""
    first, end = part_bounds(unet, parts)[index]

    def part(unet, *args):
        return run_stages(unet, first, end, *args)

    part.__name__ = part.__qualname__ = unet_part_name(index, parts)
    return part


def run_parts(unet, parts: int, *args: torch.Tensor) -> torch.Tensor:
    """The whole forward, part after part (eagerly: the reference the compiled parts are checked against)."""
    for index in range(parts):
        args = run_part(unet, index, parts, *args)
    return args


def inputs_of_part(unet, index: int, parts: int, *unet_args: torch.Tensor) -> tuple:
    """Part `index`'s inputs for the UNet's inputs `unet_args`: the parts before it, run eagerly (a builder compiles
    one part for the shapes, dtypes and devices they give)."""
    args = unet_args
    with torch.no_grad():
        for earlier in range(index):
            args = run_part(unet, earlier, parts, *args)
    return args
