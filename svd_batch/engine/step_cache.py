"""Step caching for SVD's UNet (approximate, opt-in): DeepCache-style reuse of deep features between denoising steps.

Neighbouring denoising steps change the UNet's deep, low-resolution features little (DeepCache, arXiv 2312.00858).
Every `interval`-th step runs the whole UNet and keeps the input of its last up block; the steps in between run only
the shallowest level (conv_in, the first down block's layers, the last up block) on top of that cached feature.
With `reuse_guidance`, the steps in between also skip the unconditional half of the classifier-free-guidance batch:
its output is the conditional output plus the (unconditional - conditional) difference of the last full step.

`StepCache` is installed as the UNet's forward (the pipeline and the model object are unchanged) and reads the step
index from the pipeline's scheduler. The full and the shallow step are plain functions of the UNet with fixed
shapes, so each compiles to one graph and is saved as a compiled artifact like the whole UNet. (The DeepCache
package patches Stable Diffusion's UNet only; its SVD support is a copy of an old pipeline, and it does not
compile.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.schedulers import EulerDiscreteScheduler

from svd_batch.config import ConfigError

StepFunction = Callable[..., torch.Tensor | tuple[torch.Tensor, torch.Tensor]]


class StepCache:
    """The UNet's forward on a step-cached schedule: `full` every `interval`-th step, `shallow` in between.

    `full` and `shallow` default to `full_step` and `shallow_step` below on this UNet; the compiled profiles pass
    their compiled versions (svd_batch.engine.compiled)."""

    def __init__(
        self,
        unet: UNetSpatioTemporalConditionModel,
        scheduler: EulerDiscreteScheduler,
        interval: int,
        reuse_guidance: bool = False,
        full: StepFunction | None = None,
        shallow: StepFunction | None = None,
    ):
        shallow_block, last_up = unet.down_blocks[0], unet.up_blocks[-1]
        if len(last_up.resnets) != len(shallow_block.resnets) + 1:  # conv_in + one skip per first-block layer
            raise ConfigError("step caching needs a UNet whose last up block mirrors its first down block")
        self.unet = unet
        self.scheduler = scheduler
        self.interval = interval
        self.reuse_guidance = reuse_guidance
        self.full = full or partial(full_step, unet)
        self.shallow = shallow or partial(shallow_step, unet)
        self.deep: torch.Tensor | None = None  # input of the last up block at the last full step
        self.guidance_delta: torch.Tensor | None = None  # (unconditional - conditional) output at the last full step
        self.full_steps = 0  # how many steps of each kind ran (the tests check the schedule)
        self.shallow_steps = 0

    def install(self) -> StepCache:
        self.unet.forward = self  # an instance attribute: nn.Module.__call__ runs it instead of the class forward
        return self

    def __call__(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        return_dict: bool = False,  # the SVD pipeline passes False; a tuple is returned either way
    ) -> tuple[torch.Tensor]:
        step = self.scheduler.step_index or 0  # set by scale_model_input just before this call
        if self.deep is None or step % self.interval == 0 or self.deep.shape[0] != sample.shape[:2].numel():
            out, self.deep = self.full(sample, timestep, encoder_hidden_states, added_time_ids)
            self.full_steps += 1
            if self.reuse_guidance and sample.shape[0] == 2:
                uncond, cond = out.chunk(2)
                self.guidance_delta = uncond - cond
            return (out,)

        self.shallow_steps += 1
        if self.reuse_guidance and sample.shape[0] == 2:  # the pipeline's guidance batch: [unconditional, conditional]
            deep_cond = self.deep.chunk(2)[1]
            cond = self.shallow(sample[1:], timestep, encoder_hidden_states[1:], added_time_ids[1:], deep_cond)
            return (torch.cat([cond + self.guidance_delta, cond]),)
        return (self.shallow(sample, timestep, encoder_hidden_states, added_time_ids, self.deep),)


def embed_conditioning(unet, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states, added_time_ids):
    """UNetSpatioTemporalConditionModel.forward's preamble: time and micro-conditioning embeddings per frame."""
    batch, frames = sample.shape[:2]
    timesteps = timestep.reshape(-1)[:1].to(sample.device).expand(batch)
    emb = unet.time_embedding(unet.time_proj(timesteps).to(dtype=sample.dtype))
    time_embeds = unet.add_time_proj(added_time_ids.flatten()).reshape((batch, -1)).to(emb.dtype)
    emb = emb + unet.add_embedding(time_embeds)
    emb = emb.repeat_interleave(frames, dim=0, output_size=batch * frames)
    context = encoder_hidden_states.repeat_interleave(frames, dim=0, output_size=batch * frames)
    indicator = torch.zeros(batch, frames, dtype=sample.dtype, device=sample.device)
    return emb, context, indicator


def _shallow_down(unet, hidden, emb, context, indicator) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """conv_in and the first down block's layers, without its downsampler: the skips the last up block reads."""
    hidden = unet.conv_in(hidden)
    skips = (hidden,)
    block = unet.down_blocks[0]
    for resnet, attn in zip(block.resnets, block.attentions, strict=True):
        hidden = resnet(hidden, emb, image_only_indicator=indicator)
        hidden = attn(hidden, encoder_hidden_states=context, image_only_indicator=indicator, return_dict=False)[0]
        skips += (hidden,)
    return hidden, skips


def _shallow_up(unet, deep, skips, emb, context, indicator, batch: int, frames: int) -> torch.Tensor:
    hidden = unet.up_blocks[-1](
        hidden_states=deep,
        temb=emb,
        res_hidden_states_tuple=skips,
        encoder_hidden_states=context,
        image_only_indicator=indicator,
    )
    hidden = unet.conv_out(unet.conv_act(unet.conv_norm_out(hidden)))
    return hidden.reshape(batch, frames, *hidden.shape[1:])


def full_step(unet, sample, timestep, encoder_hidden_states, added_time_ids) -> tuple[torch.Tensor, torch.Tensor]:
    """The UNet's own computation, also returning the last up block's input (latent sizes are multiples of 8,
    which the config enforces, so no upsample size is forwarded)."""
    batch, frames = sample.shape[:2]
    emb, context, indicator = embed_conditioning(unet, sample, timestep, encoder_hidden_states, added_time_ids)
    hidden, skips = _shallow_down(unet, sample.flatten(0, 1), emb, context, indicator)
    first = unet.down_blocks[0]
    if first.downsamplers is not None:
        for downsampler in first.downsamplers:
            hidden = downsampler(hidden)
        skips += (hidden,)
    for block in unet.down_blocks[1:]:
        hidden, block_skips = block(**block_inputs(block, hidden, emb, context, indicator))
        skips += block_skips
    hidden = unet.mid_block(
        hidden_states=hidden, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator
    )
    for block in unet.up_blocks[:-1]:
        block_skips, skips = skips[-len(block.resnets) :], skips[: -len(block.resnets)]
        hidden = block(res_hidden_states_tuple=block_skips, **block_inputs(block, hidden, emb, context, indicator))
    out = _shallow_up(unet, hidden, skips, emb, context, indicator, batch, frames)
    return out, hidden


def shallow_step(unet, sample, timestep, encoder_hidden_states, added_time_ids, deep) -> torch.Tensor:
    """Only the shallowest level, on top of `deep`, the last full step's input of the last up block."""
    batch, frames = sample.shape[:2]
    emb, context, indicator = embed_conditioning(unet, sample, timestep, encoder_hidden_states, added_time_ids)
    _, skips = _shallow_down(unet, sample.flatten(0, 1), emb, context, indicator)
    return _shallow_up(unet, deep, skips, emb, context, indicator, batch, frames)


def block_inputs(block: torch.nn.Module, hidden, emb, context, indicator) -> dict:
    inputs = {"hidden_states": hidden, "temb": emb, "image_only_indicator": indicator}
    if getattr(block, "has_cross_attention", False):
        inputs["encoder_hidden_states"] = context
    return inputs
