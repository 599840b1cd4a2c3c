"""Step caching for SVD's UNet (approximate, opt-in): DeepCache-style reuse of deep features between denoising steps.

Neighbouring denoising steps change the UNet's deep, low-resolution features little (DeepCache, arXiv 2312.00858).
Every `interval`-th step runs the whole UNet and keeps the input of its last up block; the steps in between run only
the shallowest level (conv_in, the first down block's layers, the last up block) on top of that cached feature.
With `reuse_guidance`, the steps in between also skip the unconditional half of the classifier-free-guidance batch:
its output is the conditional output plus the (unconditional - conditional) difference of the last full step.

The wrapper replaces `pipe.unet`, takes the diffusers call signature and reads the step index from the pipeline's
scheduler, so the pipeline itself is unchanged. The full and the shallow forward are separate functions with fixed
shapes, so each compiles to one graph. (The DeepCache package patches Stable Diffusion's UNet only; its SVD support
is a copy of an old pipeline, and it does not compile.)
"""

from __future__ import annotations

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.schedulers import EulerDiscreteScheduler

from svd_batch.config import ConfigError


class StepCachedUNet(torch.nn.Module):
    def __init__(
        self,
        unet: UNetSpatioTemporalConditionModel,
        scheduler: EulerDiscreteScheduler,
        interval: int,
        reuse_guidance: bool = False,
    ):
        super().__init__()
        shallow, last_up = unet.down_blocks[0], unet.up_blocks[-1]
        if len(last_up.resnets) != len(shallow.resnets) + 1:  # conv_in + one skip per layer of the first down block
            raise ConfigError("step caching needs a UNet whose last up block mirrors its first down block")
        self.unet = unet
        self.scheduler = scheduler
        self.interval = interval
        self.reuse_guidance = reuse_guidance
        self.full_forward = self._full_forward  # replaced by compiled versions in `compile`
        self.shallow_forward = self._shallow_forward
        self.deep: torch.Tensor | None = None  # input of the last up block at the last full step
        self.guidance_delta: torch.Tensor | None = None  # (unconditional - conditional) output at the last full step
        self.full_steps = 0  # how many steps of each kind ran (the tests check the schedule)
        self.shallow_steps = 0

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:  # config, dtype, add_embedding, ...: the pipeline reads them off its unet
            return getattr(self.unet, name)

    def compile(self, **options) -> None:
        self.full_forward = torch.compile(self._full_forward, **options)
        self.shallow_forward = torch.compile(self._shallow_forward, **options)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        return_dict: bool = False,  # the SVD pipeline passes False; a tuple is returned either way
    ) -> tuple[torch.Tensor]:
        step = self.scheduler.step_index or 0  # set by scale_model_input just before this call
        if self.deep is None or step % self.interval == 0 or self.deep.shape[0] != sample.shape[:2].numel():
            out, self.deep = self.full_forward(sample, timestep, encoder_hidden_states, added_time_ids)
            self.full_steps += 1
            if self.reuse_guidance and sample.shape[0] == 2:
                uncond, cond = out.chunk(2)
                self.guidance_delta = uncond - cond
            return (out,)

        self.shallow_steps += 1
        if self.reuse_guidance and sample.shape[0] == 2:  # the pipeline's guidance batch: [unconditional, conditional]
            deep_cond = self.deep.chunk(2)[1]
            cond = self.shallow_forward(sample[1:], timestep, encoder_hidden_states[1:], added_time_ids[1:], deep_cond)
            return (torch.cat([cond + self.guidance_delta, cond]),)
        return (self.shallow_forward(sample, timestep, encoder_hidden_states, added_time_ids, self.deep),)

    def _embed(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states, added_time_ids):
        """UNetSpatioTemporalConditionModel.forward's preamble: time and micro-conditioning embeddings per frame."""
        unet = self.unet
        batch, frames = sample.shape[:2]
        timesteps = timestep.reshape(-1)[:1].to(sample.device).expand(batch)
        emb = unet.time_embedding(unet.time_proj(timesteps).to(dtype=sample.dtype))
        time_embeds = unet.add_time_proj(added_time_ids.flatten()).reshape((batch, -1)).to(emb.dtype)
        emb = emb + unet.add_embedding(time_embeds)
        emb = emb.repeat_interleave(frames, dim=0, output_size=batch * frames)
        context = encoder_hidden_states.repeat_interleave(frames, dim=0, output_size=batch * frames)
        indicator = torch.zeros(batch, frames, dtype=sample.dtype, device=sample.device)
        return emb, context, indicator

    def _shallow_down(self, hidden, emb, context, indicator) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """conv_in and the first down block's layers, without its downsampler: the skips the last up block reads."""
        hidden = self.unet.conv_in(hidden)
        skips = (hidden,)
        block = self.unet.down_blocks[0]
        for resnet, attn in zip(block.resnets, block.attentions, strict=True):
            hidden = resnet(hidden, emb, image_only_indicator=indicator)
            hidden = attn(hidden, encoder_hidden_states=context, image_only_indicator=indicator, return_dict=False)[0]
            skips += (hidden,)
        return hidden, skips

    def _shallow_up(self, deep, skips, emb, context, indicator, batch: int, frames: int) -> torch.Tensor:
        hidden = self.unet.up_blocks[-1](
            hidden_states=deep,
            temb=emb,
            res_hidden_states_tuple=skips,
            encoder_hidden_states=context,
            image_only_indicator=indicator,
        )
        hidden = self.unet.conv_out(self.unet.conv_act(self.unet.conv_norm_out(hidden)))
        return hidden.reshape(batch, frames, *hidden.shape[1:])

    def _full_forward(self, sample, timestep, encoder_hidden_states, added_time_ids):
        """The UNet's own computation, also returning the last up block's input (latent sizes are multiples of 8,
        which the config enforces, so no upsample size is forwarded)."""
        unet = self.unet
        batch, frames = sample.shape[:2]
        emb, context, indicator = self._embed(sample, timestep, encoder_hidden_states, added_time_ids)
        hidden, skips = self._shallow_down(sample.flatten(0, 1), emb, context, indicator)
        first = unet.down_blocks[0]
        if first.downsamplers is not None:
            for downsampler in first.downsamplers:
                hidden = downsampler(hidden)
            skips += (hidden,)
        for block in unet.down_blocks[1:]:
            hidden, block_skips = block(**_block_inputs(block, hidden, emb, context, indicator))
            skips += block_skips
        hidden = unet.mid_block(
            hidden_states=hidden, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator
        )
        for block in unet.up_blocks[:-1]:
            block_skips, skips = skips[-len(block.resnets) :], skips[: -len(block.resnets)]
            hidden = block(res_hidden_states_tuple=block_skips, **_block_inputs(block, hidden, emb, context, indicator))
        out = self._shallow_up(hidden, skips, emb, context, indicator, batch, frames)
        return out, hidden

    def _shallow_forward(self, sample, timestep, encoder_hidden_states, added_time_ids, deep):
        batch, frames = sample.shape[:2]
        emb, context, indicator = self._embed(sample, timestep, encoder_hidden_states, added_time_ids)
        _, skips = self._shallow_down(sample.flatten(0, 1), emb, context, indicator)
        return self._shallow_up(deep, skips, emb, context, indicator, batch, frames)


def _block_inputs(block: torch.nn.Module, hidden, emb, context, indicator) -> dict:
    inputs = {"hidden_states": hidden, "temb": emb, "image_only_indicator": indicator}
    if getattr(block, "has_cross_attention", False):
        inputs["encoder_hidden_states"] = context
    return inputs
