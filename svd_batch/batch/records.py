"""The output folder's bookkeeping: one JobRecord per finished job, appended to a journal (JSON lines, flushed and
fsynced), and `index.csv` rebuilt from the journal. A torn last line is ignored, so a crash never corrupts what
was already recorded; the newest record of a job wins. One process at a time writes a folder (an flock), and it
clears the temporary files a killed run left behind."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from svd_batch.config import SAMPLE_PARAM_NAMES, SvdBatchError
from svd_batch.results.export import PARTIAL_PREFIX

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
    "poster",
    "error",
    *SAMPLE_PARAM_NAMES,
    "model",
    "hardware",
    *TIME_COLUMNS,
    "peak_vram_gib",
    "fallback",
    "finished_at",
)
TEXT_COLUMNS = ("id", "image", "output", "poster", "error", "fallback")
LOCK_NAME = ".svd-batch.lock"


class OutputError(SvdBatchError):
    pass


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    poster: str = ""  # thumbnail (middle frame), relative to the output folder
    error: str = ""
    times: dict[str, float] = field(default_factory=dict)  # TIME_COLUMNS -> seconds
    peak_vram_gib: float | None = None
    fallback: str = ""  # what an out-of-memory retry changed, e.g. "decode_chunk_size 8 -> 4"
    finished_at: str = field(default_factory=utc_timestamp)  # set again when the job is journalled

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
            "poster": self.poster,
            "error": self.error,
            **self.params,
            "model": self.model,
            "hardware": self.hardware,
            **{c: _rounded(self.times.get(c)) for c in TIME_COLUMNS},
            "peak_vram_gib": _rounded(self.peak_vram_gib),
            "fallback": self.fallback,
            "finished_at": self.finished_at,
        }
        return {c: _spreadsheet_safe(row[c]) if c in TEXT_COLUMNS else row.get(c) for c in INDEX_COLUMNS}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (CSV formula injection)."""
    return f"'{text}" if text and text[0] in "=+-@\t\r" else text


def _without_superseded_failures(records) -> list[JobRecord]:
    """Drops a failure that a later success of the same item, parameters and model replaced (a missing image that
    was then supplied has new content, hence a new job id, and its old failure is no longer news)."""
    records = list(records)

    def key(r: JobRecord) -> str:
        return json.dumps([r.id, r.params, r.model], sort_keys=True)

    succeeded = {key(r): r.finished_at for r in records if r.ok}
    return [r for r in records if r.ok or succeeded.get(key(r), "") < r.finished_at]


def _writer_alive(partial: Path) -> bool:
    """Temporary names carry their writer's pid: `.partial-<pid>-<name>`."""
    try:
        pid = int(partial.name[len(PARTIAL_PREFIX) :].split("-", 1)[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


class OutputFolder:
    def __init__(self, root: Path, shard: int = 0):
        """`shard`: this process's index when several processes share the folder; each journals in its own file."""
        self.root = root
        self.videos = root / "videos"
        self.posters = root / "posters"
        self.journal_path = root / (JOURNAL_NAME if shard == 0 else f"journal-{shard}.jsonl")
        self.lock_path = root / (LOCK_NAME if shard == 0 else f".svd-batch-{shard}.lock")
        self.index_path = root / INDEX_NAME

    def open(self) -> None:
        """Creates the folder, takes its lock (or says who holds it) and clears a killed run's temporary files."""
        try:
            self.videos.mkdir(parents=True, exist_ok=True)
            self.posters.mkdir(exist_ok=True)
            self._lock = self.lock_path.open("a+")
        except OSError as exc:
            raise OutputError(
                f"cannot write to the output folder {self.root}: {exc.strerror or exc}; set "
                f"output_dir to a writable folder"
            ) from exc
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            raise OutputError(
                f"output folder {self.root} is in use by svd-batch {holder}; wait for that run to "
                f"finish, or give this run another output_dir"
            ) from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"pid {os.getpid()}")
        self._lock.flush()
        for folder in (self.root, self.videos, self.posters):
            for stale in folder.glob(f"{PARTIAL_PREFIX}*"):
                if not _writer_alive(stale):  # another live process of this run may be writing it
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock and not lock.closed:
            lock.close()  # releases the flock

    def __enter__(self) -> OutputFolder:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def records(self) -> dict[str, JobRecord]:
        """The newest record of each job, from every process's journal."""
        latest: dict[str, JobRecord] = {}
        for path in sorted(self.root.glob("journal*.jsonl")):
            with path.open(encoding="utf-8") as journal:
                for line in journal:
                    try:
                        record = JobRecord(**json.loads(line))
                    except (json.JSONDecodeError, TypeError):
                        continue  # a line torn by a crash
                    known = latest.get(record.job_id)
                    if known is None or record.finished_at >= known.finished_at:
                        latest[record.job_id] = record
        return latest

    def job_states(self) -> dict[str, str]:
        """ "ok" or "failed" per recorded job; an ok job whose video has since gone counts as not recorded."""
        return {
            job_id: record.status
            for job_id, record in self.records().items()
            if not record.ok or (self.root / record.output).exists()
        }

    def append(self, record: JobRecord) -> None:
        line = json.dumps(dataclasses.asdict(record), ensure_ascii=False)
        try:
            with self.journal_path.open("a", encoding="utf-8") as journal:
                journal.write(line + "\n")
                journal.flush()
                os.fsync(journal.fileno())
        except OSError as exc:
            hint = "the disk is full: free space, then rerun" if exc.errno == errno.ENOSPC else "check the folder"
            raise OutputError(
                f"cannot record job {record.job_id} in {self.journal_path}: {exc.strerror}; {hint} "
                f"(finished jobs are kept; a rerun continues)"
            ) from exc

    def write_index(self) -> pd.DataFrame:
        rows = [record.row() for record in _without_superseded_failures(self.records().values())]
        table = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        partial = self.index_path.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{INDEX_NAME}")
        table.to_csv(partial, index=False)
        os.replace(partial, self.index_path)
        return table
