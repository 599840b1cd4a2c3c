"""Weights & Biases logging: the resolved config, per-job metrics and videos, a Table of every job with its
parameters, and the run summary. Offline by default (`wandb sync` later); `disabled` turns it all off."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from svd_batch.batch.records import QUALITY_COLUMNS, TIME_COLUMNS, JobRecord
from svd_batch.config import SAMPLE_PARAM_NAMES, TrackingConfig, TrackingMode

TABLE_COLUMNS = [
    "job_id", "id", "status", "video", "thumbnail", *SAMPLE_PARAM_NAMES, *TIME_COLUMNS, *QUALITY_COLUMNS,
    "peak_vram_gib", "error",
]  # fmt: skip
VIDEO_SUFFIXES = {".mp4", ".gif"}  # what wandb.Video plays from a file


class Tracker:
    """One W&B run, or nothing when tracking is disabled."""

    def __init__(self, cfg: TrackingConfig, run_dir: Path, config: dict[str, Any], group: str | None = None):
        self.cfg = cfg
        self.root = run_dir  # the output folder; record paths are relative to it
        self.run = None
        self.rows: list[list[Any]] = []
        if cfg.mode is TrackingMode.disabled:
            return
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group or group,
            name=cfg.name,
            tags=cfg.tags or None,
            mode=cfg.mode.value,
            dir=str(run_dir),
            config=config,
            job_type="svd-batch",
            settings=wandb.Settings(console="off", silent=True),
        )
        self.run.define_metric("job/*", step_metric="job/index")

    def add_config(self, values: dict[str, Any]) -> None:
        """Adds to the run's config what is known only once the model is loaded (the environment)."""
        if self.run:
            self.run.config.update(values, allow_val_change=True)

    @property
    def run_path(self) -> Path | None:
        return Path(self.run.dir).parent if self.run else None

    def log_job(self, index: int, record: JobRecord, video: Path | None) -> None:
        if not self.run:
            return
        metrics: dict[str, Any] = {"job/index": index, "job/ok": int(record.ok)}
        metrics.update({f"job/{k}": v for k, v in record.times.items()})
        metrics.update({f"quality/{k}": v for k, v in record.quality.items()})
        if record.peak_vram_gib is not None:
            metrics["job/peak_vram_gib"] = record.peak_vram_gib
        media = None
        if video is not None and self.cfg.log_videos and video.suffix in VIDEO_SUFFIXES:
            media = self.wandb.Video(str(video), format=video.suffix[1:], caption=f"{record.id} {record.job_id}")
            metrics["job/video"] = media
        self.run.log(metrics)
        thumbnail = None
        if record.ok and record.poster:
            thumbnail = self.wandb.Image(str(self.root / record.poster), caption=record.id)
        self.rows.append(
            [
                record.job_id,
                record.id,
                record.status,
                media,
                thumbnail,
                *(record.params.get(n) for n in SAMPLE_PARAM_NAMES),
                *(record.times.get(c) for c in TIME_COLUMNS),
                *(record.quality.get(c) for c in QUALITY_COLUMNS),
                record.peak_vram_gib,
                record.error,
            ]
        )

    def log_report(self, grids: list[Path], gallery: Path | None) -> None:
        """The comparison grids as videos; the gallery page as a file of the run."""
        if not self.run:
            return
        for grid in grids:
            if grid.suffix in VIDEO_SUFFIXES:
                self.run.log({f"grid/{grid.stem}": self.wandb.Video(str(grid), format=grid.suffix[1:])})
        if gallery is not None:  # a file in the run's folder is uploaded with it (wandb.save would symlink and warn)
            shutil.copy2(gallery, Path(self.run.dir) / gallery.name)

    def motion_plots(self) -> dict[str, Any]:
        """One chart per swept parameter: its value against the measured motion, a point per video."""
        plots = {}
        motion = TABLE_COLUMNS.index("motion_px")
        for name in SAMPLE_PARAM_NAMES:
            column = TABLE_COLUMNS.index(name)
            points = [[row[column], row[motion]] for row in self.rows if row[motion] is not None]
            if len({x for x, _ in points}) > 1:
                data = self.wandb.Table(columns=[name, "motion_px"], data=points)
                title = f"measured motion by {name}"
                plots[f"quality/motion_px_by_{name}"] = self.wandb.plot.scatter(data, name, "motion_px", title=title)
        return plots

    def finish(self, summary: dict[str, Any]) -> None:
        if not self.run:
            return
        if self.rows:
            table = self.wandb.Table(columns=TABLE_COLUMNS, data=self.rows, allow_mixed_types=True)
            self.run.log({"jobs": table, **self.motion_plots()})
        self.run.summary.update(summary)
        self.run.finish()
