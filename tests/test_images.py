"""Image loading: EXIF orientation, colour modes, fit policies, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from svd_batch.batch.images import ImageLoadError, fit_image, load_image
from svd_batch.batch.manifest import bundled_manifest
from svd_batch.config import FitPolicy


def test_exif_rotated_photo_is_upright():
    image = load_image(str(bundled_manifest().parent / "boat_exif_rotated.jpg"))
    assert image.size == (512, 288)  # stored 288 wide, 512 tall, with EXIF orientation 6
    array = np.asarray(image)
    assert array[:60].mean(axis=(0, 1))[2] > 200  # the sky (light blue) is at the top


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16"])
def test_every_colour_mode_becomes_rgb(tmp_path, mode):
    array = np.full((32, 48, 3), 200, np.uint8)
    image = Image.fromarray(array).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)  # 16-bit greyscale
        assert image.mode.startswith("I;16")
    path = tmp_path / f"img.{'tiff' if mode == 'CMYK' else 'png'}"
    image.save(path)
    loaded = load_image(str(path))
    assert loaded.mode == "RGB" and loaded.size == (48, 32)
    assert abs(int(np.asarray(loaded).mean()) - 200) <= 3


def test_transparency_goes_over_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(path)
    assert np.asarray(load_image(str(path))).min() == 255


@pytest.mark.parametrize(
    "policy,check",
    [
        (FitPolicy.crop, lambda a: a[:, 0].mean() > 100 and a[:, -1].mean() > 100),  # no bars
        (FitPolicy.pad, lambda a: a[:, 0].max() == 0 and a[:, -1].max() == 0),  # black side bars
        (FitPolicy.stretch, lambda a: a[:, 0].mean() > 100),
    ],
)
def test_fit_policies(policy, check):
    wide = Image.new("RGB", (400, 100), (200, 200, 200))
    tall_target = fit_image(Image.new("RGB", (100, 400), (200, 200, 200)), 192, 128, policy)
    assert fit_image(wide, 192, 128, policy).size == (192, 128)
    assert check(np.asarray(tall_target))


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(ImageLoadError, match="gone.png: no such file; fix the path in the manifest"):
        load_image(str(tmp_path / "gone.png"))


def test_empty_and_corrupt_and_truncated_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    Image.new("RGB", (64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(str(tmp_path / "empty.png"))
    with pytest.raises(ImageLoadError, match="not a readable image"):
        load_image(str(tmp_path / "text.png"))
    with pytest.raises(ImageLoadError, match="not a readable image"):
        load_image(str(tmp_path / "cut.png"))


def test_unreachable_url_fails_quickly_with_advice():
    with pytest.raises(ImageLoadError, match="could not download"):
        load_image("http://127.0.0.1:9/none.png", timeout_s=2)
