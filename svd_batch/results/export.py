"""Writing frames to a video file or a folder of frames, atomically: a temporary name, then a rename into place, so
a file under its final name is always complete."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from svd_batch.config import ExportConfig, ExportFormat, LoopMode

PARTIAL_PREFIX = ".partial-"  # a killed run's leftovers; the next run in the folder removes them


def partial_name(target: Path) -> Path:
    """`.partial-<pid>-<host>-<name>`: the writer's pid and host tell a later run whether it is still writing."""
    return target.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{socket.gethostname()}-{target.name}")


def partial_writer(name: str) -> tuple[str, int] | None:
    """(host, pid) of a temporary name from `partial_name` (the final names hold no '-'), or None."""
    try:
        pid, rest = name[len(PARTIAL_PREFIX) :].split("-", 1)
        return rest.rsplit("-", 1)[0], int(pid)
    except ValueError:
        return None


def output_name(job_id: str, fmt: ExportFormat) -> str:
    """File (or, for png, folder) name of a job's video."""
    return job_id if fmt is ExportFormat.png else f"{job_id}.{fmt.value}"


def looped(frames: np.ndarray, mode: LoopMode) -> np.ndarray:
    """pingpong: the frames, then back without repeating either end (2F-2 frames), so a player's loop is seamless."""
    if mode is LoopMode.none or len(frames) < 3:
        return frames
    return np.concatenate([frames, frames[-2:0:-1]])


def export_frames(frames: np.ndarray, target: Path, export: ExportConfig) -> Path:
    """Writes (F, H, W, 3) uint8 frames to `target` (as a loop with export.loop=pingpong) and returns it."""
    frames = looped(frames, export.loop)
    target.parent.mkdir(parents=True, exist_ok=True)
    # keep the extension on the temporary name: ffmpeg picks the container from it
    partial = partial_name(target)
    try:
        writer = _WRITERS[export.format]
        writer(frames, partial, export)
        if export.format is ExportFormat.png and target.exists():
            shutil.rmtree(target)  # a folder cannot be replaced by rename
        os.replace(partial, target)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.exists():
            partial.unlink()
    return target


def poster_name(job_id: str) -> str:
    return f"{job_id}.jpg"


def write_poster(frames: np.ndarray, target: Path) -> Path:
    """The middle frame as a JPEG thumbnail (gallery poster, W&B thumbnail), written atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_name(target)
    Image.fromarray(frames[len(frames) // 2]).save(partial, format="JPEG", quality=85)
    os.replace(partial, target)
    return target


def _write_mp4(frames: np.ndarray, path: Path, export: ExportConfig) -> None:
    """H.264 in yuv420p: plays in browsers, players and W&B."""
    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=export.fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        output_params=["-crf", str(export.crf), "-movflags", "+faststart"],
        ffmpeg_log_level="error",
    )
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()


def _write_animated(frames: np.ndarray, path: Path, export: ExportConfig) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    extra = {"lossless": False, "quality": 90} if export.format is ExportFormat.webp else {}
    images[0].save(
        path,
        format=export.format.value.upper(),
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / export.fps),
        loop=0,
        **extra,
    )


def _write_png_folder(frames: np.ndarray, path: Path, export: ExportConfig) -> None:
    path.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"frame_{index:04d}.png")


_WRITERS = {
    ExportFormat.mp4: _write_mp4,
    ExportFormat.gif: _write_animated,
    ExportFormat.webp: _write_animated,
    ExportFormat.png: _write_png_folder,
}


def read_frames(path: Path) -> np.ndarray:
    """Reads a video or frame folder back as (F, H, W, 3) uint8 (for checks and reports)."""
    if path.is_dir():
        return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(path.glob("frame_*.png"))])
    if path.suffix == ".mp4":
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        width, height = meta["size"]
        return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader])
    with Image.open(path) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
    return np.stack(frames)
