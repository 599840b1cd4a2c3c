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
    """A typed Config for an in-process run into tmp_path/out, W&B off unless overridden."""

    def _make(*overrides: str) -> Config:
        return load_config(compose_cfg(f"output_dir={tmp_path / 'out'}", "tracking.mode=disabled", *overrides))

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
