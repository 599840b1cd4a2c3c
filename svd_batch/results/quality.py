"""What a video shows, as numbers per job, computed from the frames already in memory (no torch here; the CLIP
measure, which needs the pipeline's image encoder, is svd_batch.engine.pipeline.VideoGenerator.subject_similarity).

- motion_px: mean optical-flow magnitude between consecutive frames, in pixels per frame at REFERENCE_WIDTH wide
  (values compare across resolutions): OpenCV's Farneback dense flow on grey frames scaled to that width. SVD's
  motion buckets were defined from measured optical flow; this is the same kind of measure.
- flicker: mean absolute change between consecutive grey frames, in 8-bit levels, after the previous frame's content
  is moved along the estimated flow (VBench-style temporal flickering without penalising motion): high for noise
  and strobing, low for smooth motion and stills.
- first_frame_psnr: PSNR in dB of frame 0 against the fitted conditioning image (how faithfully the video starts
  from the input), capped at 100 dB for identical frames.
- subject_similarity: mean cosine similarity of each frame's CLIP image embedding with the conditioning image's.
- join_jump (chained videos only, `sample.segments` > 1): how visible the worst join between segments is: the mean
  absolute change of grey frames (8-bit levels, at REFERENCE_WIDTH wide) across the join, over the median change
  between frames within segments, each plus half a level so still videos score 1. About 1: the join cannot be told
  from the video's own motion; 3 or more: a visible jump.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("motion_px", "subject_similarity", "first_frame_psnr", "flicker", "join_jump")
FRAME_ONLY = ("motion_px", "flicker", "join_jump")  # measured from the frames alone, on the export thread
REFERENCE_WIDTH = 256
MAX_PSNR_DB = 100.0
JOIN_NOISE_LEVELS = 0.5  # added to both sides of join_jump's ratio: codec noise on a still video is not a jump


def _grey_at_reference_width(frames: np.ndarray, width: int) -> list[np.ndarray]:
    import cv2  # imported where measured: planning and dry runs never pay for it

    height = max(8, round(frames.shape[1] * width / frames.shape[2]))
    small = (cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames)
    return [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in small]


def flow_measures(frames: np.ndarray, width: int = REFERENCE_WIDTH) -> tuple[float, float]:
    """(motion_px, flicker) from one pass of Farneback flow between consecutive grey frames at `width` wide."""
    import cv2

    if len(frames) < 2:
        return 0.0, 0.0
    grey = _grey_at_reference_width(frames, width)
    height = grey[0].shape[0]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    motion, change = [], []
    for previous, current in zip(grey, grey[1:], strict=False):
        flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        motion.append(float(np.linalg.norm(flow, axis=2).mean()))
        # the current frame pulled back along the flow: what is left of the change is not motion
        back = cv2.remap(current, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)
        change.append(float(np.abs(back.astype(np.int16) - previous.astype(np.int16)).mean()))
    return float(np.mean(motion)), float(np.mean(change))


def motion_px(frames: np.ndarray, width: int = REFERENCE_WIDTH) -> float:
    """Mean Farneback flow magnitude between consecutive frames, pixels per frame at `width` pixels wide."""
    return flow_measures(frames, width)[0]


def flicker(frames: np.ndarray, width: int = REFERENCE_WIDTH) -> float:
    """Mean absolute change between consecutive grey frames (8-bit levels) once the estimated motion is removed."""
    return flow_measures(frames, width)[1]


def first_frame_psnr(frames: np.ndarray, image: np.ndarray) -> float:
    """PSNR (dB) of frame 0 against the conditioning image as fitted to the video's size (uint8 HxWx3)."""
    difference = frames[0].astype(np.int32) - image  # exact in integers; float64 copies of both cost 5x the time
    error = float(np.mean(difference * difference))
    return MAX_PSNR_DB if error == 0 else min(MAX_PSNR_DB, 10 * math.log10(255.0**2 / error))


def join_jump(frames: np.ndarray, joins: list[int], width: int = REFERENCE_WIDTH) -> float:
    """The worst join's frame change over the median change within segments; `joins`: indices i where frame
    i -> i + 1 crosses into the next segment (svd_batch.engine.segments.join_positions)."""
    grey = [frame.astype(np.int16) for frame in _grey_at_reference_width(frames, width)]
    changes = np.array([np.abs(current - previous).mean() for previous, current in zip(grey, grey[1:], strict=False)])
    within = np.delete(changes, joins)
    typical = float(np.median(within)) if len(within) else 0.0
    return float((changes[joins].max() + JOIN_NOISE_LEVELS) / (typical + JOIN_NOISE_LEVELS))


def applicable(wanted: tuple[str, ...] | list[str], params: dict) -> list[str]:
    """The measures among `wanted` that a job with these parameters has: join_jump only for chained videos."""
    return [m for m in wanted if m != "join_jump" or (params.get("segments") or 1) > 1]


def frame_metrics(frames: np.ndarray, wanted: tuple[str, ...] | list[str], params: dict | None = None) -> dict:
    """The frame-only measures among `wanted` (run on the export thread, off the GPU's path); `params`: the job's
    parameters, which say where a chained video's joins are."""
    from svd_batch.engine.segments import join_positions

    params = params or {}
    wanted = applicable(wanted, params)
    measures: dict[str, float] = {}
    if {"motion_px", "flicker"} & set(wanted):
        motion, change = flow_measures(frames)
        measures |= {name: value for name, value in (("motion_px", motion), ("flicker", change)) if name in wanted}
    if "join_jump" in wanted:
        measures["join_jump"] = join_jump(frames, join_positions(params["num_frames"], params["segments"]))
    return measures
