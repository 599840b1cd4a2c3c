"""Shared fixtures: real Hydra composition of conf/, the tiny model in a per-session cache, small test images."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from svd_batch.config import Config, load_config

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny-model cache for the whole session; subprocesses find it through SVD_BATCH_CACHE."""
    path = tmp_path_factory.mktemp("svd-cache")
    os.environ["SVD_BATCH_CACHE"] = str(path)
    return path


@pytest.fixture
def compose_cfg(cache_dir: Path):
    """Composes conf/ exactly as run.py does, with overrides; returns the DictConfig."""

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=[f"cache_dir={cache_dir}", *overrides])

    return _compose


@pytest.fixture
def make_config(compose_cfg, tmp_path: Path) -> Callable[..., Config]:
    """A typed Config for an in-process run into tmp_path/out, W&B and quality measures off, 2 steps, unless
    overridden."""

    def _make(*overrides: str) -> Config:
        # 2 denoising steps and no quality measures unless a test says otherwise: every code path, less CPU time
        defaults = (f"output_dir={tmp_path / 'out'}", "tracking.mode=disabled", "sample.num_inference_steps=2",
                    "quality.enabled=false")  # fmt: skip
        return load_config(compose_cfg(*defaults, *overrides))

    return _make


def write_image(path: Path, size: tuple[int, int] = (160, 128), seed: int = 0, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    width, height = size
    array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def manifest_of(tmp_path: Path) -> Callable[..., Path]:
    """Writes a manifest CSV (header + rows) into tmp_path/data and returns its path."""

    def _write(header: str, *rows: str, name: str = "manifest.csv") -> Path:
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        path = data / name
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return _write


@pytest.fixture
def two_images(tmp_path: Path) -> Path:
    """A manifest of two different 128x128 images (already the tiny model's size)."""
    data = tmp_path / "data"
    write_image(data / "a.png", (128, 128), seed=1)
    write_image(data / "b.png", (128, 128), seed=2)
    manifest = data / "two.csv"
    manifest.write_text("image,id\na.png,a\nb.png,b\n", encoding="utf-8")
    return manifest


@pytest.fixture(scope="session")
def compiled_tiny(tmp_path_factory, cache_dir):
    """The tiny UNet compiled once (`aot_eager`: the same ahead-of-time trace and serialization as inductor, no code
    generation) into a store whose settings match `hardware=cpu` plus the cross-attention shortcut on the tiny model's
    8-frame default; returns (settings, the artifact's metadata, the eager output for `tiny_unet_inputs()`)."""
    import torch

    from svd_batch.engine.artifacts import ArtifactStore
    from svd_batch.engine.compiled import Compiler, CompileSettings
    from svd_batch.engine.hardware import FastPaths
    from svd_batch.engine.models import build_tiny_pipeline
    from svd_batch.engine.unet_fast import install

    root = tmp_path_factory.mktemp("compiled")
    settings = CompileSettings(
        store=root / "artifacts", inductor_cache=root / "inductor", model="tiny:tiny:::float32", device="cpu",
        device_name="cpu", dtype="float32", fast_paths=FastPaths(single_token_cross_attention=True),
        backend="aot_eager", background=False,
    )  # fmt: skip
    unet = build_tiny_pipeline().unet.eval()
    install(unet, settings.fast_paths)
    expected = tiny_denoise(unet)
    Compiler(settings).install_unet(unet)
    assert torch.allclose(tiny_denoise(unet), expected, atol=1e-6)
    [meta] = ArtifactStore(settings.store).find("unet", {"shape": [2, 8, 8, 16, 16]})
    return settings, meta, expected


def tiny_unet_inputs(width: int = 16):
    """A CFG batch of 2 x 8 frames of the tiny UNet's latents, SVD's single image token, and micro-conditioning."""
    import torch

    generator = torch.Generator().manual_seed(2)
    return (
        torch.randn(2, 8, 8, 16, width, generator=generator),
        torch.tensor(0.7),
        torch.randn(2, 1, 32, generator=generator),
        torch.tensor([[6.0, 127.0, 0.02]] * 2),
    )


def tiny_denoise(unet, width: int = 16):
    import torch

    sample, t, context, time_ids = tiny_unet_inputs(width)
    with torch.no_grad():
        return unet(sample, t, encoder_hidden_states=context, added_time_ids=time_ids, return_dict=False)[0]
