"""Quality measures for videos already in a folder (written with `quality.enabled=false`, or by an svd-batch without
them): from the video files and the source images, appended as updated records to a journal of their own, so the
index rebuilt from the journals carries them (`python -m svd_batch.report output_dir=DIR report.quality=true`)."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from svd_batch.batch.images import fit_image, load_image
from svd_batch.batch.records import QUALITY_COLUMNS, JobRecord, OutputFolder
from svd_batch.config import FitPolicy
from svd_batch.results.export import read_frames
from svd_batch.results.quality import applicable, first_frame_psnr, frame_metrics

log = logging.getLogger(__name__)


def folder_config(root: Path) -> DictConfig | None:
    """The resolved config of the newest run that wrote the folder (configs/<worker>.yaml), or None."""
    configs = sorted((root / "configs").glob("*.yaml"), key=lambda p: p.stat().st_mtime)
    return OmegaConf.load(configs[-1]) if configs else None


def backfill_quality(root: Path, similarity=None) -> int:
    """Measures every ok job whose record lacks a measure; returns how many were measured. `similarity(frames,
    image)`: the CLIP measure, when a model is at hand (None leaves subject_similarity empty)."""
    reader = OutputFolder(root)
    wanted = [c for c in QUALITY_COLUMNS if c != "subject_similarity" or similarity is not None]
    missing = [
        r for r in reader.records().values() if r.ok and any(c not in r.quality for c in applicable(wanted, r.params))
    ]
    if not missing:
        return 0
    config = folder_config(root)
    fit = FitPolicy(OmegaConf.select(config, "image_fit", default="crop") if config is not None else "crop")
    out = OutputFolder(root, f"backfill-{socket.gethostname()}-{os.getpid()}")
    out.open()
    for record in missing:
        out.append(measure_record(root, record, fit, wanted, similarity))
    return len(missing)


def measure_record(root: Path, record: JobRecord, fit: FitPolicy, wanted: list[str], similarity) -> JobRecord:
    frames = rendered_frames(read_frames(root / record.output), record.params)
    record.quality.update(frame_metrics(frames, wanted, record.params))
    try:
        image = fit_image(load_image(record.image), frames.shape[2], frames.shape[1], fit)
    except Exception as exc:  # the source image moved or went away: the frame-only measures still count
        log.warning("job %s: cannot read its image %s (%s): first_frame_psnr stays empty", record.job_id,
                    record.image, exc)  # fmt: skip
        return record
    if "first_frame_psnr" in wanted:
        record.quality["first_frame_psnr"] = first_frame_psnr(frames, np.asarray(image.convert("RGB")))
    if similarity is not None:
        record.quality["subject_similarity"] = similarity(frames, image)
    return record


def rendered_frames(frames: np.ndarray, params: dict) -> np.ndarray:
    """The frames as rendered: a loop export (export.loop=pingpong) appended the way back, which is not measured."""
    segments = params.get("segments") or 1  # journals from before chaining have no segments: one
    return frames[: segments * (params["num_frames"] - 1) + 1]
