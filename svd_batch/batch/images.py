"""Loading a conditioning image: from a path or URL, upright (EXIF), RGB, fitted to the video size."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from svd_batch.batch.manifest import is_url
from svd_batch.config import FitPolicy, SvdBatchError

# Decompression-bomb guard: PIL raises above twice this many pixels; 8K x 8K is far beyond any SVD input.
Image.MAX_IMAGE_PIXELS = 8192 * 8192


class ImageLoadError(SvdBatchError):
    pass


def load_image(ref: str, timeout_s: float = 20.0) -> Image.Image:
    """Reads an image, applies its EXIF orientation and converts it to 8-bit RGB."""
    data = _read_bytes(ref, timeout_s)
    if not data:
        raise ImageLoadError(f"{ref}: the file is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # decode now, so a truncated file fails here and not later
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{ref}: image is too large ({exc}); downscale it first") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(
            f"{ref}: not a readable image ({exc}); check the file is a complete PNG/JPEG/WebP"
        ) from exc
    return to_rgb(ImageOps.exif_transpose(image))


def _read_bytes(ref: str, timeout_s: float) -> bytes:
    if is_url(ref):
        try:
            with urllib.request.urlopen(ref, timeout=timeout_s) as response:  # noqa: S310 (http(s) only)
                return response.read()
        except (OSError, ValueError) as exc:
            raise ImageLoadError(
                f"{ref}: could not download ({exc}); check the URL and the network, or download "
                f"the image and list its local path in the manifest"
            ) from exc
    path = Path(ref)
    if not path.is_file():
        raise ImageLoadError(
            f"{ref}: no such file; fix the path in the manifest (relative paths are relative to the manifest's folder)"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"{ref}: cannot read the file ({exc})") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for any PIL mode: transparency over white, 16-bit scaled down, CMYK/palette/grey converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def fit_image(image: Image.Image, width: int, height: int, policy: FitPolicy) -> Image.Image:
    """Fits an image to width x height: crop (cover, centre crop), pad (letterbox in black) or stretch (as the seed
    guide does)."""
    size = (width, height)
    if image.size == size:
        return image
    if policy is FitPolicy.crop:
        return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)
    if policy is FitPolicy.pad:
        return ImageOps.pad(image, size, method=Image.Resampling.LANCZOS, color=(0, 0, 0))
    return image.resize(size)  # PIL's default filter, exactly the seed guide's image.resize((1024, 576))
