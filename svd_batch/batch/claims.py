"""Several workers, one output folder: which worker renders which job.

A worker claims a job by creating `claims/<job_id>.<generation>`: written under a temporary name and `link()`ed into
place, which fails if the name exists (the NFS-portable atomic create; a link count of 2 confirms it even when the
server's reply was lost). The claim names its worker; a worker shows it is alive by renewing the modification time
of `workers/<worker_id>` from a heartbeat thread. A job whose newest claim belongs to a dead worker (same host: its
pid is gone; any host: its heartbeat is older than the lease) is taken over by creating the next generation, which
only one worker can do. A worker whose heartbeat went stale, or whose claim was superseded, abandons the job instead
of finishing it twice.

Claims stay after their job is done: they record who rendered what, and a job that has one is never claimed afresh,
only taken over, after the caller has checked that it is not done.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CLAIMS_DIR = "claims"
WORKERS_DIR = "workers"


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    host: str
    pid: int
    started: float  # wall clock

    @classmethod
    def this_process(cls) -> WorkerInfo:
        host = socket.gethostname()
        pid = os.getpid()
        return cls(f"{host}-{pid}-{uuid.uuid4().hex[:6]}", host, pid, time.time())


@dataclass(frozen=True)
class Claim:
    job_id: str
    generation: int
    holder: WorkerInfo


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class Claims:
    """This worker's view of the folder's claims and heartbeats."""

    def __init__(self, root: Path, lease_s: float, me: WorkerInfo | None = None):
        self.root = root
        self.lease_s = lease_s
        self.me = me or WorkerInfo.this_process()
        self.claims = root / CLAIMS_DIR
        self.workers = root / WORKERS_DIR
        self.heartbeat = self.workers / self.me.worker_id
        self.renewed = 0.0  # time.monotonic() of the last successful renewal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- this worker's heartbeat -----------------------------------------------------------------------------------

    def start(self) -> None:
        self.claims.mkdir(parents=True, exist_ok=True)
        self.workers.mkdir(parents=True, exist_ok=True)
        self.heartbeat.write_text(json.dumps(asdict(self.me)))
        self.renewed = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                os.utime(self.heartbeat)
                self.renewed = time.monotonic()
            except OSError as exc:  # a folder that went away: stop vouching, the lease runs out
                log.warning("cannot renew this worker's heartbeat in %s: %s", self.workers, exc)

    def stop(self) -> None:
        """Stops vouching for this worker: its claims count as dead from now on."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.heartbeat.unlink(missing_ok=True)

    def fresh(self) -> bool:
        """True while this worker's last renewal is well within the lease (half of it: others take over at all)."""
        return time.monotonic() - self.renewed < self.lease_s / 2

    # --- other workers --------------------------------------------------------------------------------------------

    def alive(self, worker: WorkerInfo) -> bool:
        if worker.worker_id == self.me.worker_id:
            return True
        if worker.host == self.me.host and not pid_alive(worker.pid):
            return False
        try:
            age = time.time() - (self.workers / worker.worker_id).stat().st_mtime
        except FileNotFoundError:
            return False  # it stopped (or never started) vouching
        return age < self.lease_s

    def others_alive(self) -> list[WorkerInfo]:
        """The other workers whose heartbeat is fresh."""
        others = []
        for path in self.workers.glob("*"):
            if path.name == self.me.worker_id or path.name.startswith("."):
                continue
            try:
                worker = WorkerInfo(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue  # written just now, or removed
            if self.alive(worker):
                others.append(worker)
        return others

    # --- claims -----------------------------------------------------------------------------------------------------

    def newest(self, job_id: str, start: int = 0) -> Claim | None:
        """The job's current claim: generations are made in order (0, 1, ...), so the last that exists.
        `start`: the generation to look from (known from a directory listing)."""
        claim = None
        for generation in itertools.count(start):
            try:
                text = (self.claims / f"{job_id}.{generation}").read_text()
            except FileNotFoundError:
                return claim
            try:
                holder = WorkerInfo(**json.loads(text))
            except (ValueError, TypeError):  # unreadable: its holder counts as gone
                holder = WorkerInfo("unknown", "unknown", -1, 0.0)
            claim = Claim(job_id, generation, holder)
        return claim

    def unclaimed(self, job_ids: list[str]) -> list[str]:
        """The jobs that no live worker holds: one directory listing, then one read per claimed job."""
        try:
            names = os.listdir(self.claims)
        except FileNotFoundError:
            return list(job_ids)
        generations: dict[str, int] = {}
        for name in names:
            job_id, _, generation = name.rpartition(".")
            if job_id and not name.startswith(".") and generation.isdigit():
                generations[job_id] = max(generations.get(job_id, 0), int(generation))
        free = []
        for job_id in job_ids:
            current = self.newest(job_id, generations[job_id]) if job_id in generations else None
            if current is None or not self.alive(current.holder):
                free.append(job_id)
        return free

    def try_claim(self, job_id: str, done: Callable[[str], bool]) -> Claim | None:
        """Claims `job_id` for this worker, or returns None when a live worker holds it (or it is done). `done` is
        asked again, from fresh journals, before a dead worker's job is taken over."""
        current = self.newest(job_id)
        if current is not None:
            if current.holder.worker_id == self.me.worker_id:
                return current
            if self.alive(current.holder) or done(job_id):
                return None
            log.info("taking over job %s from %s (not alive)", job_id, current.holder.worker_id)
        generation = 0 if current is None else current.generation + 1
        return Claim(job_id, generation, self.me) if self._create(job_id, generation) else None

    def _create(self, job_id: str, generation: int) -> bool:
        final = self.claims / f"{job_id}.{generation}"
        temporary = self.claims / f".{job_id}.{generation}.{self.me.worker_id}"
        self.claims.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(asdict(self.me)))
        try:
            os.link(temporary, final)
        except FileExistsError:
            pass  # another worker was first
        except OSError:
            pass  # NFS: the link may exist although the reply was lost; the link count says
        try:
            return temporary.stat().st_nlink == 2
        finally:
            temporary.unlink(missing_ok=True)

    def still_mine(self, claim: Claim) -> bool:
        """Whether this worker may still finish `claim`'s job: its heartbeat is fresh and no newer claim exists."""
        if not self.fresh():
            return False
        newest = self.newest(claim.job_id)
        return newest is not None and newest.generation == claim.generation
