"""Weights & Biases logging: the resolved config, per-job metrics and videos, a Table of every job with its
parameters, and the run summary. Offline by default (`wandb sync` later); `disabled` turns it all off.

W&B runs in a process of its own (`python -m svd_batch.results.tracking`), fed through a pipe: importing and starting
it (about 2 s of Python on the H200 machine) then happens on another core while this process loads the model, and
its per-video work (media files, the table) never holds the interpreter that feeds the GPU. A W&B failure is logged
as a warning; the videos, index and report do not depend on it."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO

from svd_batch.batch.records import QUALITY_COLUMNS, TIME_COLUMNS, JobRecord
from svd_batch.child_process import module_command, module_environment
from svd_batch.config import SAMPLE_PARAM_NAMES, TrackingConfig, TrackingMode

log = logging.getLogger(__name__)
TABLE_COLUMNS = [
    "job_id", "id", "status", "video", "thumbnail", *SAMPLE_PARAM_NAMES, *TIME_COLUMNS, *QUALITY_COLUMNS,
    "peak_vram_gib", "error",
]  # fmt: skip
VIDEO_SUFFIXES = {".mp4", ".gif"}  # what wandb.Video plays from a file


class Tracker:
    """The run's W&B logging, or nothing when tracking is disabled: each call is a message to the tracking process."""

    def __init__(self, cfg: TrackingConfig, run_dir: Path, config: dict[str, Any], group: str | None = None):
        self.process: subprocess.Popen | None = None
        self._run_path: Path | None = None
        self.failed = False
        if cfg.mode is TrackingMode.disabled:
            return
        replies_read, replies_write = os.pipe()
        self.process = subprocess.Popen(
            module_command("svd_batch.results.tracking", str(replies_write)),
            env=module_environment(),
            stdin=subprocess.PIPE,
            pass_fds=(replies_write,),
            start_new_session=True,  # a Ctrl-C stops the run, which closes the pipe: the W&B run then finishes
        )
        os.close(replies_write)
        self.replies = os.fdopen(replies_read, "rb")
        self._send("start", cfg, run_dir, config, group)

    def add_config(self, values: dict[str, Any]) -> None:
        """Adds to the run's config what is known only once the model is loaded (the environment)."""
        self._send("add_config", values)

    def log_job(self, index: int, record: JobRecord, video: Path | None) -> None:
        self._send("log_job", index, record, video)

    def log_table(self) -> None:
        """The table of this run's jobs and the motion charts, sent once the jobs are done: the tracking process
        writes them (a media file per video) while this one makes the grids, index and report."""
        self._send("log_table")

    def log_report(self, grids: list[Path], gallery: Path | None) -> None:
        self._send("log_report", grids, gallery)

    def finish(self, summary: dict[str, Any]) -> None:
        """Logs the summary and table, and waits for the W&B run to be written."""
        self._send("finish", summary)
        if self.process is not None:  # a send that found the process ended has closed it already
            self._close()

    @property
    def run_path(self) -> Path | None:
        """The W&B run's folder, once `finish` has returned (None when tracking is off or failed)."""
        return self._run_path

    def _send(self, command: str, *args: Any) -> None:
        if self.process is None or self.failed:
            return
        try:
            pickle.dump((command, args), self.process.stdin)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):  # the tracking process has ended: _close says why
            self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        self.process.wait()
        for kind, value in _read_replies(self.replies):
            if kind == "run_path":
                self._run_path = Path(value)
            elif kind == "error":
                self.failed = True
                log.warning("W&B tracking failed (the videos, index and report are complete): %s", value)
        self.replies.close()
        if self.process.returncode != 0 and not self.failed:
            self.failed = True
            log.warning("W&B tracking ended with exit code %s", self.process.returncode)
        self.process = None


def _read_replies(stream: BinaryIO):
    while True:
        try:
            yield pickle.load(stream)
        except EOFError:
            return


class WandbRun:
    """One W&B run, in the tracking process that `Tracker` starts."""

    def __init__(self, cfg: TrackingConfig, run_dir: Path, config: dict[str, Any], group: str | None = None):
        self.cfg = cfg
        self.root = run_dir  # the output folder; record paths are relative to it
        self.rows: list[list[Any]] = []
        self.table_logged = False
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
        self.run.config.update(values, allow_val_change=True)

    @property
    def run_path(self) -> Path:
        return Path(self.run.dir).parent

    def log_job(self, index: int, record: JobRecord, video: Path | None) -> None:
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

    def log_table(self) -> None:
        if self.rows and not self.table_logged:
            table = self.wandb.Table(columns=TABLE_COLUMNS, data=self.rows, allow_mixed_types=True)
            self.run.log({"jobs": table, **self.motion_plots()})
            self.table_logged = True

    def finish(self, summary: dict[str, Any]) -> None:
        self.log_table()  # where the run ended before its jobs were done
        self.run.summary.update(summary)
        self.run.finish()


def serve(commands: BinaryIO, replies: BinaryIO) -> int:
    """The tracking process: runs each command of the pipe on one W&B run until `finish` or the pipe's end."""
    run: WandbRun | None = None
    try:
        while True:
            try:
                command, args = pickle.load(commands)
            except EOFError:  # the run stopped without finishing (Ctrl-C, a fatal error): keep what was logged
                if run is not None:
                    run.run.finish(exit_code=1)
                return 0
            if command == "start":
                run = WandbRun(*args)
                pickle.dump(("run_path", str(run.run_path)), replies)
                replies.flush()
            else:
                getattr(run, command)(*args)
            if command == "finish":
                return 0
    except Exception as exc:  # reported to the run as a warning
        pickle.dump(("error", f"{type(exc).__name__}: {exc}"), replies)
        replies.flush()
        return 1


if __name__ == "__main__":
    with os.fdopen(int(sys.argv[1]), "wb") as reply_stream:
        sys.exit(serve(sys.stdin.buffer, reply_stream))
