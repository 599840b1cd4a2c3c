"""The output folder's bookkeeping: one JobRecord per finished job, appended to the journal of the worker that
rendered it (`journals/<worker_id>.jsonl`, flushed and fsynced; several hosts appending to one file over NFS can
corrupt it), and `index.csv` rebuilt from every journal. Each line carries a CRC-32 of its record, so a torn or
corrupt line is dropped, never half-read; the newest record of a job wins. Any number of workers may share a folder
(which of them renders a job is settled by svd_batch.batch.claims); a run clears the temporary files that dead
writers left behind."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import shutil
import socket
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from svd_batch.batch.claims import pid_alive
from svd_batch.config import SAMPLE_PARAM_NAMES, SvdBatchError
from svd_batch.results.export import PARTIAL_PREFIX, partial_name, partial_writer

JOURNALS_DIR = "journals"
INDEX_NAME = "index.csv"
REPORT_LOCK = ".report.lock"
TIME_COLUMNS = (
    "time_load_image_s",
    "time_encode_s",
    "time_denoise_s",
    "time_decode_s",
    "time_export_s",
    "time_quality_s",
    "time_total_s",
)
# svd_batch/results/quality.py; join_jump only for chained videos (sample.segments > 1)
QUALITY_COLUMNS = ("motion_px", "subject_similarity", "first_frame_psnr", "flicker", "join_jump")
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
    *QUALITY_COLUMNS,
    "peak_vram_gib",
    "fallback",
    "worker",
    "finished_at",
)
TEXT_COLUMNS = ("id", "image", "output", "poster", "error", "fallback", "worker")


class OutputError(SvdBatchError):
    pass


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # orders runs a second apart too


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
    quality: dict[str, float] = field(default_factory=dict)  # QUALITY_COLUMNS -> value
    peak_vram_gib: float | None = None
    fallback: str = ""  # what an out-of-memory retry changed, e.g. "decode_chunk_size 8 -> 4"
    worker: str = ""  # the worker that rendered it (svd_batch.batch.claims.WorkerInfo.worker_id)
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
            **{c: _rounded(self.quality.get(c)) for c in QUALITY_COLUMNS},
            "peak_vram_gib": _rounded(self.peak_vram_gib),
            "fallback": self.fallback,
            "worker": self.worker,
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


def journal_line(record: JobRecord) -> str:
    payload = json.dumps(dataclasses.asdict(record), ensure_ascii=False, sort_keys=True)
    return json.dumps({"crc32": zlib.crc32(payload.encode()), "record": json.loads(payload)}, ensure_ascii=False)


def parse_journal_line(line: str) -> JobRecord | None:
    """The record of a journal line, or None for a torn or corrupt one. Lines without a checksum come from
    svd-batch versions before per-worker journals."""
    try:
        entry = json.loads(line)
        if "crc32" in entry:
            payload = json.dumps(entry["record"], ensure_ascii=False, sort_keys=True)
            if zlib.crc32(payload.encode()) != entry["crc32"]:
                return None
            entry = entry["record"]
        return JobRecord(**entry)
    except (ValueError, TypeError, AttributeError):
        return None


class JournalReader:
    """Every journal of a folder, read incrementally: a refresh reads only what was appended since."""

    def __init__(self, root: Path):
        self.root = root
        self.offsets: dict[Path, int] = {}
        self.latest: dict[str, JobRecord] = {}

    def paths(self) -> list[Path]:
        return sorted([*self.root.glob("journal*.jsonl"), *(self.root / JOURNALS_DIR).glob("*.jsonl")])

    def refresh(self) -> dict[str, JobRecord]:
        for path in self.paths():
            try:
                with path.open("rb") as journal:
                    journal.seek(self.offsets.get(path, 0))
                    data = journal.read()
            except OSError:
                continue
            complete = data.rfind(b"\n") + 1  # a line still being written is read next time
            self.offsets[path] = self.offsets.get(path, 0) + complete
            for line in data[:complete].decode("utf-8", errors="replace").splitlines():
                record = parse_journal_line(line)
                if record is None:
                    continue
                known = self.latest.get(record.job_id)
                # the newest wins; at the same time, the one with more quality measures (a backfill)
                if known is None or (record.finished_at, len(record.quality)) >= (
                    known.finished_at,
                    len(known.quality),
                ):
                    self.latest[record.job_id] = record
        return self.latest


def _partial_writer_gone(partial: Path, max_idle_s: float) -> bool:
    """Temporary names carry their writer's host and pid (svd_batch.results.export.partial_writer). On this host the
    pid tells; from another host, a file nobody has touched for `max_idle_s` is left over."""
    writer = partial_writer(partial.name)
    if writer is None:
        return True
    host, pid = writer
    if host == socket.gethostname():
        return pid != os.getpid() and not pid_alive(pid)
    try:
        return time.time() - partial.stat().st_mtime > max_idle_s
    except FileNotFoundError:
        return False


class OutputFolder:
    def __init__(self, root: Path, worker_id: str | None = None, stale_after_s: float = 600.0):
        """`worker_id`: the journal this process appends to (svd_batch.batch.claims.WorkerInfo); None only reads.
        `stale_after_s`: how long another host's temporary file may sit untouched before it counts as left over."""
        self.root = root
        self.videos = root / "videos"
        self.posters = root / "posters"
        self.journals = root / JOURNALS_DIR
        self.journal_path = self.journals / f"{worker_id}.jsonl" if worker_id else None
        self.index_path = root / INDEX_NAME
        self.stale_after_s = stale_after_s
        self.reader = JournalReader(root)

    def open(self) -> None:
        """Creates the folder (or says why it cannot) and clears temporary files that dead writers left."""
        try:
            for folder in (self.videos, self.posters, self.journals):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise OutputError(
                f"cannot write to the output folder {self.root}: {exc.strerror or exc}; set "
                f"output_dir to a writable folder"
            ) from exc
        for folder in (self.root, self.videos, self.posters):
            for stale in folder.glob(f"{PARTIAL_PREFIX}*"):
                if _partial_writer_gone(stale, self.stale_after_s):
                    shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)

    def __enter__(self) -> OutputFolder:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        pass  # nothing to release: no lock is held between reports

    def records(self) -> dict[str, JobRecord]:
        """The newest record of each job, from every worker's journal (re-reading only what is new)."""
        return self.reader.refresh()

    def journal_files(self) -> list[Path]:
        return self.reader.paths()

    def job_states(self) -> dict[str, str]:
        """ "ok" or "failed" per recorded job; an ok job whose video has since gone counts as not recorded."""
        return {
            job_id: record.status
            for job_id, record in self.records().items()
            if not record.ok or (self.root / record.output).exists()
        }

    def append(self, record: JobRecord) -> None:
        if self.journal_path is None:
            raise OutputError(f"{self.root} was opened read-only")
        try:
            with self.journal_path.open("a", encoding="utf-8") as journal:
                journal.write(journal_line(record) + "\n")
                journal.flush()
                os.fsync(journal.fileno())
        except OSError as exc:
            hint = "the disk is full: free space, then rerun" if exc.errno == errno.ENOSPC else "check the folder"
            raise OutputError(
                f"cannot record job {record.job_id} in {self.journal_path}: {exc.strerror}; {hint} "
                f"(finished jobs are kept; a rerun continues)"
            ) from exc

    @contextlib.contextmanager
    def report_lock(self) -> Iterator[None]:
        """Held briefly while one worker rewrites the index, grids and gallery."""
        with (self.root / REPORT_LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def index_table(self) -> pd.DataFrame:
        """The index as it stands: a row per job, from every worker's journal."""
        rows = [record.row() for record in _without_superseded_failures(self.records().values())]
        return pd.DataFrame(rows, columns=list(INDEX_COLUMNS))

    def write_index(self) -> pd.DataFrame:
        table = self.index_table()
        partial = partial_name(self.index_path)
        table.to_csv(partial, index=False)
        os.replace(partial, self.index_path)
        return table
