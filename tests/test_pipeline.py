"""The tiny model through the real loading path, and VideoGenerator against a plain diffusers call."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableVideoDiffusionPipeline
from PIL import Image

from svd_batch.config import SampleParams, load_config
from svd_batch.engine import conditioning
from svd_batch.engine.models import ModelLoadError, build_tiny_pipeline, from_pretrained, load_pipeline
from svd_batch.engine.pipeline import VideoGenerator

PARAMS = SampleParams(num_frames=6, num_inference_steps=4, height=128, width=128, decode_chunk_size=3, seed=3)


@pytest.fixture(scope="module")
def tiny_model(cache_dir):
    """Loads the tiny model exactly as a run does (builds and saves it first if the cache is empty)."""
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = load_config(compose("config", overrides=[f"cache_dir={cache_dir}", "output_dir=/tmp/unused"]))
    return config.model, load_pipeline(config.model, torch.float32)


@pytest.fixture(scope="module")
def generator(tiny_model):
    return VideoGenerator(tiny_model[1])


@pytest.fixture(scope="module")
def image():
    return Image.fromarray(np.random.default_rng(5).integers(0, 256, (128, 128, 3), dtype=np.uint8))


def test_tiny_model_is_saved_as_safetensors_in_diffusers_format(tiny_model):
    folder = Path(tiny_model[0].path)
    assert (folder / "model_index.json").is_file()
    weights = sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin")
    )
    assert weights == [
        "image_encoder/model.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]


def test_frames_equal_a_plain_diffusers_call(tiny_model, generator, image):
    plain = StableVideoDiffusionPipeline.from_pretrained(tiny_model[0].path, use_safetensors=True)
    plain.set_progress_bar_config(disable=True)
    expected = plain(
        image, height=128, width=128, num_frames=6, num_inference_steps=4, decode_chunk_size=3,
        generator=torch.manual_seed(3),  # the seed guide's way of seeding
    ).frames[0]  # fmt: skip
    ours = generator.generate(image, PARAMS).frames
    assert ours.shape == (6, 128, 128, 3) and ours.dtype == np.uint8
    assert np.array_equal(ours, np.stack([np.asarray(frame) for frame in expected]))


def test_same_seed_same_frames_and_each_parameter_matters(generator, image):
    first = generator.generate(image, PARAMS).frames
    assert np.array_equal(first, generator.generate(image, PARAMS).frames)
    for change in ({"seed": 4}, {"motion_bucket_id": 200}, {"noise_aug_strength": 0.3}, {"fps": 20}):
        other = generator.generate(image, dataclasses.replace(PARAMS, **change)).frames
        assert not np.array_equal(first, other), change


def test_stages_are_timed(generator, image):
    result = generator.generate(image, PARAMS)
    times = result.times
    assert times.encode_s > 0 and times.denoise_s > 0 and times.decode_s > 0
    assert times.denoise_s > times.encode_s  # 4 UNet steps cost more than one CLIP + VAE encode
    assert result.peak_vram_gib is None  # CPU


def test_tiny_build_is_deterministic():
    a, b = build_tiny_pipeline(), build_tiny_pipeline()
    assert all(torch.equal(x, y) for x, y in zip(a.unet.parameters(), b.unet.parameters(), strict=True))


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match="missing or is not a diffusers pipeline folder"):
        from_pretrained(str(tmp_path / "nothing-here"), None, None, torch.float32)


def test_pickle_only_weights_are_refused(tmp_path):
    build_tiny_pipeline().save_pretrained(tmp_path / "pickled", safe_serialization=False)
    assert list((tmp_path / "pickled").rglob("*.bin"))
    with pytest.raises(ModelLoadError, match="only safetensors weights are loaded"):
        from_pretrained(str(tmp_path / "pickled"), None, None, torch.float32)


def test_hub_model_unavailable_offline_says_how_to_supply_a_folder():
    with pytest.raises(
        ModelLoadError, match=r"(?s)hub repo 'stabilityai/stable-video-diffusion-img2vid-xt'.*model\.path="
    ):
        from_pretrained("stabilityai/stable-video-diffusion-img2vid-xt", "fp16", None, torch.float16)


def test_conditioning_on_the_device_equals_diffusers_preprocessing(image):
    """svd_batch.engine.conditioning does diffusers' float32 arithmetic in the same order and memory layout: on the
    CPU its CLIP embedding and VAE input equal diffusers' own bit for bit (the frames test above covers the rest)."""
    pipe = build_tiny_pipeline()
    wide = Image.fromarray(np.random.default_rng(6).integers(0, 256, (96, 160, 3), dtype=np.uint8))
    expected = {
        "embedding": pipe._encode_image(wide, "cpu", 2, True),
        "vae_input": pipe.video_processor.preprocess(wide, height=96, width=160),
        "other_size": pipe.video_processor.preprocess(wide, height=64, width=64),
    }
    conditioning.install(pipe)
    embedding = pipe._encode_image(wide, "cpu", 2, True)
    vae_input = pipe.video_processor.preprocess(wide, height=96, width=160)
    assert embedding.shape == (4, 1, pipe.image_encoder.config.projection_dim)
    assert torch.equal(embedding, expected["embedding"])
    assert torch.equal(vae_input, expected["vae_input"]) and vae_input.stride() == expected["vae_input"].stride()
    # an image of another size is resized by diffusers' own preprocessing
    assert torch.equal(pipe.video_processor.preprocess(wide, height=64, width=64), expected["other_size"])
    conditioning.uninstall(pipe)
    assert "_encode_image" not in pipe.__dict__ and "preprocess" not in pipe.video_processor.__dict__


def test_starting_noise_drawn_ahead_gives_the_same_video(generator, image):
    """What the job loop draws on its thread is exactly what the pipeline's call would draw; noise of another shape
    (a job whose parameters changed) is not used."""
    latents = generator.initial_latents(PARAMS)
    assert latents.shape == (1, 6, 4, 16, 16) and latents.device.type == "cpu"
    plain = generator.generate(image, PARAMS).frames
    assert np.array_equal(generator.generate(image, PARAMS, latents).frames, plain)
    other = generator.initial_latents(dataclasses.replace(PARAMS, num_frames=4))
    assert np.array_equal(generator.generate(image, PARAMS, other).frames, plain)
    assert not np.array_equal(generator.generate(image, PARAMS, torch.zeros_like(latents)).frames, plain)
