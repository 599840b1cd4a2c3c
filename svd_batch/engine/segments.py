"""Longer videos from chained segments: segment k > 1 is conditioned on the last frame of segment k-1, with a seed of
its own derived from the job's, and its frames are matched to the first segment's colours so a long video does not
drift. No torch here: the chaining arithmetic is plain numpy (OpenCV's Lab conversion, scikit-image's histogram
matching), tested without a model.

Frames of a chain: segment 1 whole, then each later segment without its first frame (it stands for the frame it was
conditioned on, which the video already has): segments x (num_frames - 1) + 1 frames.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

STATS_WIDTH = 256  # colour statistics are taken at this width: the same numbers, a fraction of the work


def segment_seed(seed: int, segment: int) -> int:
    """The seed of segment `segment` (0-based): the job's own for the first, so a one-segment job and the first
    segment of a chain are the same video; a hash of (seed, segment) after, so seed sweeps never share noise."""
    if segment == 0:
        return seed
    digest = hashlib.sha256(f"svd-batch segment {seed} {segment}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # < 2**63, what torch.Generator.manual_seed accepts


def join_positions(num_frames: int, segments: int) -> list[int]:
    """Indices i of the joined video where frame i -> i + 1 crosses from one segment into the next."""
    return [k * (num_frames - 1) for k in range(1, segments)]


def join_segments(segments: list[np.ndarray]) -> np.ndarray:
    """(F, H, W, 3) segments -> one video, each later segment without its first frame."""
    if len(segments) == 1:
        return segments[0]  # as it is: a copy of a whole video would sit between one video and the next
    return np.concatenate([segments[0], *(segment[1:] for segment in segments[1:])])


class ColorMatcher:
    """Matches each new segment to the colour statistics of the first one, per channel in CIE Lab (lightness and
    two colour axes, so a tint is corrected without shifting brightness, and the other way round).

    mean_std (default): each channel's mean and spread moved to the first segment's (Reinhard-style colour transfer),
    applied as a per-channel lookup table on OpenCV's 8-bit Lab: a few milliseconds a frame, within a level or two of
    the float arithmetic. histogram: each channel's whole distribution (scikit-image's match_histograms, on 16-bit
    Lab; about ten times slower). none: unchanged.
    """

    def __init__(self, mode: str, first: np.ndarray):
        self.mode = mode
        self.first = first
        self._reference = _lab8(_small(first)).reshape(-1, 3).astype(np.float32) if mode == "mean_std" else None

    def match(self, frames: np.ndarray) -> np.ndarray:
        if self.mode == "none":
            return frames
        if self.mode == "mean_std":
            return self._match_mean_std(frames)
        if self.mode == "histogram":
            return self._match_histogram(frames)
        raise ValueError(f"color_match must be none, mean_std or histogram, got {self.mode!r}")

    def _match_mean_std(self, frames: np.ndarray) -> np.ndarray:
        import cv2

        source = _lab8(_small(frames)).reshape(-1, 3).astype(np.float32)
        scale = self._reference.std(axis=0) / np.maximum(source.std(axis=0), 1e-3)
        shift = self._reference.mean(axis=0) - source.mean(axis=0) * scale
        levels = np.arange(256, dtype=np.float32)[:, None]
        table = np.clip(np.rint(levels * scale + shift), 0, 255).astype(np.uint8).reshape(256, 1, 3)

        def one(frame: np.ndarray) -> np.ndarray:
            return cv2.cvtColor(cv2.LUT(cv2.cvtColor(frame, cv2.COLOR_RGB2Lab), table), cv2.COLOR_Lab2RGB)

        # OpenCV releases the GIL: frames convert in parallel while the next segment's work waits on them
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            return np.stack(list(pool.map(one, frames)))

    def _match_histogram(self, frames: np.ndarray) -> np.ndarray:
        from skimage.exposure import match_histograms

        # 16-bit Lab: scikit-image matches unsigned integers by counting (fast) and 16 bits lose nothing visible
        matched = match_histograms(_to_uint16(_lab(frames)), _to_uint16(_lab(self.first)), channel_axis=-1)
        return _rgb(_from_uint16(matched))


def _small(frames: np.ndarray) -> np.ndarray:
    import cv2

    step = max(1, frames.shape[2] // STATS_WIDTH)
    if step == 1:
        return frames
    height = max(1, frames.shape[1] // step)
    width = max(1, frames.shape[2] // step)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def _lab(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 CIE Lab (L 0..100, a and b about -128..127), OpenCV's conversion (D65, sRGB)."""
    import cv2

    rgb = frames.astype(np.float32) / 255.0
    return np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2Lab) for frame in rgb])


# Lab <-> uint16: L 0..100 and a, b -128..127 spread over 0..65535
_LAB_OFFSET = np.array([0.0, 128.0, 128.0], np.float32)
_LAB_SCALE = np.array([65535 / 100, 256.0, 256.0], np.float32)


def _to_uint16(lab: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((lab + _LAB_OFFSET) * _LAB_SCALE), 0, 65535).astype(np.uint16)


def _from_uint16(values: np.ndarray) -> np.ndarray:
    return (values.astype(np.float32) / _LAB_SCALE - _LAB_OFFSET).astype(np.float32)


def _lab8(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB -> OpenCV's 8-bit Lab (L x 255/100, a + 128, b + 128)."""
    import cv2

    return np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2Lab) for frame in frames])


def _rgb(lab: np.ndarray) -> np.ndarray:
    """float32 Lab -> uint8 RGB, out-of-gamut colours clipped."""
    import cv2

    rgb = np.stack([cv2.cvtColor(frame, cv2.COLOR_Lab2RGB) for frame in lab])
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
