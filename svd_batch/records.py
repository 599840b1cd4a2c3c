"""The output folder's bookkeeping: one JobRecord per finished job, appended to a journal (JSON lines, flushed and
fsynced), and `index.csv` rebuilt from the journal. A torn last line is ignored, so a crash never corrupts what
was already recorded; the newest record of a job wins."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from svd_batch.config import SAMPLE_PARAM_NAMES

JOURNAL_NAME = "journal.jsonl"
INDEX_NAME = "index.csv"
TIME_COLUMNS = (
    "time_load_image_s",
    "time_encode_s",
    "time_denoise_s",
    "time_decode_s",
    "time_export_s",
    "time_total_s",
)
INDEX_COLUMNS = (
    "job_id",
    "id",
    "image",
    "status",
    "output",
    "error",
    *SAMPLE_PARAM_NAMES,
    "model",
    "hardware",
    *TIME_COLUMNS,
    "peak_vram_gib",
    "finished_at",
)


@dataclass
class JobRecord:
    job_id: str
    id: str
    image: str
    status: str  # ok | failed
    params: dict[str, Any]
    model: str
    hardware: str
    output: str = ""  # path relative to the output folder
    error: str = ""
    times: dict[str, float] = field(default_factory=dict)  # TIME_COLUMNS -> seconds
    peak_vram_gib: float | None = None
    finished_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def row(self) -> dict[str, Any]:
        """The flat index row."""
        row = {
            "job_id": self.job_id,
            "id": self.id,
            "image": self.image,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            **self.params,
            "model": self.model,
            "hardware": self.hardware,
            **{c: _rounded(self.times.get(c)) for c in TIME_COLUMNS},
            "peak_vram_gib": _rounded(self.peak_vram_gib),
            "finished_at": self.finished_at,
        }
        return {c: row.get(c) for c in INDEX_COLUMNS}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class OutputFolder:
    def __init__(self, root: Path):
        self.root = root
        self.videos = root / "videos"
        self.journal_path = root / JOURNAL_NAME
        self.index_path = root / INDEX_NAME

    def prepare(self) -> None:
        try:
            self.videos.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"cannot create the output folder {self.root}: {exc}; set output_dir to a writable folder"
            ) from exc

    def records(self) -> dict[str, JobRecord]:
        """The newest record of each job, from the journal."""
        latest: dict[str, JobRecord] = {}
        if not self.journal_path.exists():
            return latest
        with self.journal_path.open(encoding="utf-8") as journal:
            for line in journal:
                try:
                    record = JobRecord(**json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    continue  # a line torn by a crash
                latest[record.job_id] = record
        return latest

    def completed_ids(self) -> set[str]:
        """Jobs with an ok record whose video is still there."""
        return {job_id for job_id, r in self.records().items() if r.ok and (self.root / r.output).exists()}

    def append(self, record: JobRecord) -> None:
        line = json.dumps(dataclasses.asdict(record), ensure_ascii=False)
        with self.journal_path.open("a", encoding="utf-8") as journal:
            journal.write(line + "\n")
            journal.flush()
            os.fsync(journal.fileno())

    def write_index(self) -> pd.DataFrame:
        rows = [record.row() for record in self.records().values()]
        table = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        partial = self.index_path.with_name(f".partial-{os.getpid()}-{INDEX_NAME}")
        table.to_csv(partial, index=False)
        os.replace(partial, self.index_path)
        return table
