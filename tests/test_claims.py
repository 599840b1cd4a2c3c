"""Per-job claims and heartbeats, per-worker checksummed journals, cached fingerprints: the pieces that let any
number of workers share one output folder."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from svd_batch.batch.claims import Claims, WorkerInfo
from svd_batch.batch.fingerprints import FingerprintCache
from svd_batch.batch.plan import image_fingerprint
from svd_batch.batch.records import JobRecord, JournalReader, OutputFolder, journal_line, parse_journal_line
from tests.conftest import REPO, write_image


def dead_pid() -> int:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(gone.stdout)


def other_worker(root: Path, name: str, host: str, pid: int, heartbeat_age_s: float | None) -> WorkerInfo:
    """A worker that is not this process: its heartbeat file `heartbeat_age_s` old (None: no heartbeat)."""
    worker = WorkerInfo(name, host, pid, time.time() - 1000)
    (root / "workers").mkdir(parents=True, exist_ok=True)
    if heartbeat_age_s is not None:
        beat = root / "workers" / name
        beat.write_text(json.dumps(dataclasses.asdict(worker)))
        then = time.time() - heartbeat_age_s
        os.utime(beat, (then, then))
    return worker


def claim_as(root: Path, worker: WorkerInfo, job_id: str, lease_s: float = 60) -> None:
    assert Claims(root, lease_s, worker).try_claim(job_id, lambda _: False) is not None


def test_a_job_is_claimed_once_and_a_live_holder_is_respected(tmp_path):
    first, second = Claims(tmp_path, 60), Claims(tmp_path, 60)
    first.start()
    try:
        claim = first.try_claim("j1", lambda _: False)
        assert claim is not None and claim.generation == 0 and first.still_mine(claim)
        assert second.try_claim("j1", lambda _: False) is None  # a live worker (this very process) holds it
        assert second.unclaimed(["j1", "j2"]) == ["j2"]
        assert [w.worker_id for w in second.others_alive()] == [first.me.worker_id]
    finally:
        first.stop()
    # once its worker stopped vouching, the job is free again, but a done job is never taken over
    assert second.unclaimed(["j1"]) == ["j1"]
    assert second.try_claim("j1", lambda _: True) is None
    assert second.try_claim("j1", lambda _: False).generation == 1


def test_a_claim_of_a_dead_pid_on_this_host_is_taken_over(tmp_path):
    me = Claims(tmp_path, lease_s=3600)
    dead = other_worker(tmp_path, "dead", me.me.host, dead_pid(), heartbeat_age_s=0)  # fresh beat, pid gone
    claim_as(tmp_path, dead, "j1")
    taken = me.try_claim("j1", lambda _: False)
    assert taken is not None and taken.generation == 1 and me.newest("j1").holder == me.me


def test_another_hosts_claim_counts_by_its_heartbeat(tmp_path):
    me = Claims(tmp_path, lease_s=60)
    fresh = other_worker(tmp_path, "fresh", "elsewhere", 1, heartbeat_age_s=5)  # pid 1 here means nothing
    stale = other_worker(tmp_path, "stale", "elsewhere", 1, heartbeat_age_s=120)
    claim_as(tmp_path, fresh, "held")
    claim_as(tmp_path, stale, "orphan")
    assert me.try_claim("held", lambda _: False) is None
    assert me.unclaimed(["held", "orphan"]) == ["orphan"]
    assert me.try_claim("orphan", lambda _: False).generation == 1


def test_a_worker_whose_claim_was_superseded_or_whose_heartbeat_is_late_lets_go(tmp_path):
    slow = Claims(tmp_path, lease_s=60)
    claim = slow.try_claim("j1", lambda _: False)
    slow.renewed = time.monotonic()
    assert slow.still_mine(claim)
    slow.renewed = time.monotonic() - 31  # more than half the lease without a renewal: others may take over soon
    assert not slow.still_mine(claim)
    slow.renewed = time.monotonic()
    Path(tmp_path / "claims" / "j1.1").write_text(json.dumps(dataclasses.asdict(WorkerInfo("new", "h", 1, 0.0))))
    assert not slow.still_mine(claim)  # a newer generation exists: someone else finishes it


def test_the_heartbeat_is_renewed_while_the_worker_runs(tmp_path):
    claims = Claims(tmp_path, lease_s=1.0)
    claims.start()
    try:
        first = claims.heartbeat.stat().st_mtime
        time.sleep(0.6)
        assert claims.heartbeat.stat().st_mtime > first and claims.fresh()
    finally:
        claims.stop()
    assert not claims.heartbeat.exists()


def test_racing_workers_create_one_claim(tmp_path):
    """Many processes claim the same jobs at once: each job ends with exactly one holder of generation 0."""
    code = (
        "import sys; from pathlib import Path; from svd_batch.batch.claims import Claims\n"
        "c = Claims(Path(sys.argv[1]), 60); c.start()\n"
        "won = [j for j in map(str, range(40)) if c.try_claim(j, lambda _: False)]\n"
        "print(' '.join(won)); sys.stdout.flush(); import time; time.sleep(1.5); c.stop()\n"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    won = [w.communicate(timeout=60)[0].split() for w in workers]
    assert sorted(j for each in won for j in each) == sorted(map(str, range(40)))
    assert sorted(p.name for p in (tmp_path / "claims").iterdir()) == sorted(f"{j}.0" for j in range(40))


def record(job_id: str, finished_at: str = "2026-01-01T00:00:00+00:00", **changes) -> JobRecord:
    base = JobRecord(job_id, "a", "a.png", "ok", {"seed": 1}, "m", "cpu", output=f"videos/{job_id}.mp4")
    return dataclasses.replace(base, finished_at=finished_at, **changes)


def test_torn_and_corrupt_journal_lines_are_dropped_never_half_read(tmp_path):
    journals = tmp_path / "journals"
    journals.mkdir()
    good, corrupt, torn = journal_line(record("j1")), journal_line(record("j2")), journal_line(record("j3"))
    corrupt = corrupt.replace('"seed": 1', '"seed": 7')  # valid JSON, wrong checksum
    (journals / "w1.jsonl").write_text(f"{good}\n{corrupt}\n{torn[:40]}")
    assert parse_journal_line(corrupt) is None and parse_journal_line(torn[:40]) is None
    reader = JournalReader(tmp_path)
    assert list(reader.refresh()) == ["j1"]
    with (journals / "w1.jsonl").open("a") as journal:  # the torn tail stays; a later whole line is not lost
        journal.write(f"\n{journal_line(record('j4'))}\n")
    assert sorted(reader.refresh()) == ["j1", "j4"]


def test_every_workers_journal_feeds_one_index_with_the_newest_record_of_a_job(tmp_path):
    a, b = OutputFolder(tmp_path, "wa"), OutputFolder(tmp_path, "wb")
    a.open()
    b.open()
    a.append(record("j1", status="failed", error="boom"))
    b.append(record("j1", finished_at="2026-01-02T00:00:00+00:00", worker="wb"))
    b.append(record("j2", worker="wb"))
    (tmp_path / "journal.jsonl").write_text(json.dumps(dataclasses.asdict(record("j0"))) + "\n")  # older layout
    index = OutputFolder(tmp_path).write_index()
    assert sorted(index.job_id) == ["j0", "j1", "j2"]
    assert index.set_index("job_id").loc["j1", "status"] == "ok"
    assert list(index.sort_values("job_id").worker.fillna("")) == ["", "wb", "wb"]


def test_fingerprints_are_cached_by_size_and_mtime_and_a_changed_file_is_hashed_again(tmp_path, monkeypatch):
    image = write_image(tmp_path / "a.png", seed=1)
    cache = FingerprintCache(tmp_path / "cache" / "fingerprints.json")
    first = cache(str(image))
    assert first == image_fingerprint(str(image))
    cache.save()

    hashed: list[str] = []
    monkeypatch.setattr("svd_batch.batch.fingerprints.image_fingerprint", lambda p: hashed.append(p) or "new")
    again = FingerprintCache(tmp_path / "cache" / "fingerprints.json")
    assert again(str(image)) == first and hashed == []  # from the cache: the file was not read
    write_image(image, seed=2)
    os.utime(image, ns=(1, 1))  # a changed file whose mtime even went back
    assert again(str(image)) == "new" and hashed == [str(image)]


def test_a_heartbeat_thread_outlives_a_busy_main_thread(tmp_path):
    """The GIL is released often enough in a busy worker for its heartbeat to keep going."""
    claims = Claims(tmp_path, lease_s=1.0)
    claims.start()
    try:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            sum(range(10_000))  # pure Python work
        assert claims.fresh()
    finally:
        claims.stop()
