"""The per-job protocol's export side (svd_batch.batch.loop) on a real output folder with real video encoding."""

from __future__ import annotations

import threading

import numpy as np

from svd_batch.batch import loop as loop_module
from svd_batch.batch.loop import JobLoop
from svd_batch.batch.records import OutputFolder
from svd_batch.config import ExportConfig, ExportFormat
from tests.crash_worker import planned_jobs, render


def test_a_jobs_measures_are_taken_while_its_video_is_encoded(tmp_path, monkeypatch):
    # each side waits for the other to have started: run one after the other, they would time out
    exporting, measuring = threading.Event(), threading.Event()
    export_frames = loop_module.export_frames

    def export_after_measure_started(frames, target, export):
        exporting.set()
        assert measuring.wait(20), "the measures had not started while the video was being encoded"
        return export_frames(frames, target, export)

    def measure(frames: np.ndarray, params: dict) -> dict[str, float]:
        measuring.set()
        assert exporting.wait(20), "the video's encoding had not started while it was being measured"
        return {"motion_px": float(frames.std())}

    monkeypatch.setattr(loop_module, "export_frames", export_after_measure_started)
    with OutputFolder(tmp_path / "out", "w1") as out:
        loop = JobLoop(out, ExportConfig(format=ExportFormat.mp4, fps=4), measure=measure)
        records = loop.run(planned_jobs(2), lambda job: render(job, 0.0), progress=False)

    assert [r.status for r in records] == ["ok", "ok"]
    for record in records:
        assert (tmp_path / "out" / record.output).stat().st_size > 0
        assert record.quality["motion_px"] > 0
        assert {"time_export_s", "time_quality_s", "time_total_s"} <= set(record.times)


def test_a_failing_measure_leaves_the_video_and_its_record(tmp_path):
    def measure(frames: np.ndarray, params: dict) -> dict[str, float]:
        raise ValueError("no flow")

    with OutputFolder(tmp_path / "out", "w1") as out:
        loop = JobLoop(out, ExportConfig(format=ExportFormat.mp4, fps=4), measure=measure)
        records = loop.run(planned_jobs(1), lambda job: render(job, 0.0), progress=False)
        out.write_index()

    assert records[0].ok and records[0].quality == {}
    assert (tmp_path / "out" / records[0].output).is_file()
    assert "job000" in (tmp_path / "out" / "index.csv").read_text()
