"""Resume, crash safety, bad input and GPU faults: nothing lost, nothing duplicated, every error clear."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from diffusers import StableVideoDiffusionPipeline
from PIL import Image

from svd_batch.batch import loop, worker
from svd_batch.batch.images import ImageLoadError, load_image
from svd_batch.batch.records import JobRecord, OutputError
from svd_batch.batch.runner import run
from svd_batch.engine.models import ModelLoadError, build_tiny_pipeline, from_pretrained
from tests.conftest import write_image


def manifest_with(tmp_path: Path, names: list[str], size=(128, 128)) -> Path:
    data = tmp_path / "data"
    for seed, name in enumerate(names):
        write_image(data / name, size, seed=seed)
    manifest = data / "m.csv"
    manifest.write_text("image\n" + "\n".join(names) + "\n", encoding="utf-8")
    return manifest


# --- GPU faults, injected on the CPU -------------------------------------------------------------------------------


def test_out_of_memory_retries_with_smaller_decode_chunks_and_records_it(make_config, tmp_path, monkeypatch):
    original = StableVideoDiffusionPipeline.decode_latents

    def decode_needing_small_chunks(self, latents, num_frames, decode_chunk_size=14):
        if decode_chunk_size > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return original(self, latents, num_frames, decode_chunk_size)

    monkeypatch.setattr(StableVideoDiffusionPipeline, "decode_latents", decode_needing_small_chunks)
    result = run(make_config(f"manifest={manifest_with(tmp_path, ['a.png'])}", "sweep=none"))
    [record] = result.records
    assert record.ok and record.fallback == "decode_chunk_size 8 -> 4; decode_chunk_size 4 -> 2"
    row = pd.read_csv(result.output_dir / "index.csv").iloc[0]
    assert row.decode_chunk_size == 2 and row.fallback.startswith("decode_chunk_size 8 -> 4")


def test_out_of_memory_with_no_way_out_fails_the_job_with_advice(make_config, tmp_path, monkeypatch):
    def always_oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(StableVideoDiffusionPipeline, "decode_latents", always_oom)
    manifest = manifest_with(tmp_path, ["a.png", "b.png"])  # each job renders 4 times: keep them short
    result = run(make_config(f"manifest={manifest}", "sweep=none", "sample.num_inference_steps=2"))
    assert [r.status for r in result.records] == ["failed", "failed"]  # the second job still ran
    error = result.records[0].error
    assert "while decoding, even after: decode_chunk_size 8 -> 4; decode_chunk_size 4 -> 2;" in error
    assert "retry_failed=true" in error


@pytest.mark.parametrize("value,message", [(float("nan"), "NaN/inf"), (-1.0, "are black")])
def test_nan_and_black_frames_are_failures_not_videos(make_config, tmp_path, monkeypatch, value, message):
    def broken_decode(self, latents, num_frames, decode_chunk_size=14):
        return torch.full((1, 3, num_frames, 128, 128), value)

    monkeypatch.setattr(StableVideoDiffusionPipeline, "decode_latents", broken_decode)
    result = run(make_config(f"manifest={manifest_with(tmp_path, ['a.png'])}", "sweep=none"))
    [record] = result.records
    assert record.status == "failed" and message in record.error and "bfloat16" in record.error
    assert list((result.output_dir / "videos").iterdir()) == []


# --- resume, retry, locks ------------------------------------------------------------------------------------------


def test_failed_jobs_are_kept_and_retry_failed_reruns_only_them(make_config, tmp_path, monkeypatch):
    manifest = manifest_with(tmp_path, ["a.png", "b.png"])
    real_generate = worker.VideoGenerator.generate

    def oom_for_b(self, image, params, latents=None):
        if image.getpixel((0, 0)) == image_b_pixel:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real_generate(self, image, params, latents)

    image_b_pixel = Image.open(manifest.parent / "b.png").getpixel((0, 0))
    monkeypatch.setattr(worker.VideoGenerator, "generate", oom_for_b)
    first = run(make_config(f"manifest={manifest}", "sweep=none"))
    assert sorted((r.id, r.status) for r in first.records) == [("a", "ok"), ("b", "failed")]
    monkeypatch.setattr(worker.VideoGenerator, "generate", real_generate)  # the GPU is free again

    assert run(make_config(f"manifest={manifest}", "sweep=none")).records == []  # failures are not retried by default
    retried = run(make_config(f"manifest={manifest}", "sweep=none", "retry_failed=true"))
    assert [(r.id, r.status) for r in retried.records] == [("b", "ok")]
    index = pd.read_csv(first.output_dir / "index.csv")
    assert len(index) == 2 and set(index.status) == {"ok"}  # the newest record of a job wins


def test_a_fixed_missing_image_is_a_new_job_for_a_plain_rerun(make_config, tmp_path):
    manifest = manifest_with(tmp_path, ["a.png"])
    manifest.write_text("image\na.png\nlate.png\n")
    first = run(make_config(f"manifest={manifest}", "sweep=none"))
    assert sorted(r.status for r in first.records) == ["failed", "ok"]
    write_image(manifest.parent / "late.png", (128, 128), seed=9)
    rerun = run(make_config(f"manifest={manifest}", "sweep=none"))
    assert [(r.id, r.status) for r in rerun.records] == [("late", "ok")]
    index = pd.read_csv(first.output_dir / "index.csv")  # the superseded failure is gone from the index
    assert sorted(zip(index.id, index.status, strict=True)) == [("a", "ok"), ("late", "ok")]


def test_leftovers_of_a_killed_run_are_cleared(make_config, tmp_path):
    config = make_config(f"manifest={manifest_with(tmp_path, ['a.png'])}", "sweep=none")
    videos = Path(config.output_dir) / "videos"
    videos.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    (videos / f".partial-{gone.stdout.strip()}-{host}-dead.mp4").write_bytes(b"half")  # its writer has exited
    (videos / f".partial-{os.getpid()}-{host}-alive.mp4").write_bytes(b"half")  # this process: still writing
    (videos / ".partial-7-other-host-fresh.mp4").write_bytes(b"half")  # another host, touched just now
    old = videos / ".partial-7-other-host-idle.mp4"
    old.write_bytes(b"half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))  # another host, untouched past workers.lease_s
    (Path(config.output_dir) / "journal.jsonl").write_text('{"job_id": "torn li')  # a torn last line
    result = run(config)
    assert result.summary["jobs_ok"] == 1
    left = sorted(p.name.rsplit("-", 1)[1] for p in videos.glob(".partial-*"))
    assert left == ["alive.mp4", "fresh.mp4"]


def test_unwritable_output_folder_is_refused_clearly(make_config, tmp_path):
    (tmp_path / "a-file").write_text("x")
    config = make_config(f"manifest={manifest_with(tmp_path, ['a.png'])}", f"output_dir={tmp_path / 'a-file' / 'out'}")
    with pytest.raises(OutputError, match="cannot write to the output folder .*set output_dir to a writable folder"):
        run(config)


def test_disk_full_stops_the_run_and_keeps_finished_jobs(make_config, tmp_path, monkeypatch):
    manifest = manifest_with(tmp_path, ["a.png", "b.png"])
    real_export = loop.export_frames
    calls = []

    def export_then_fill_the_disk(frames, target, export):
        calls.append(target)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_export(frames, target, export)

    monkeypatch.setattr(loop, "export_frames", export_then_fill_the_disk)
    with pytest.raises(OutputError, match="is full .* finished jobs are kept"):
        run(make_config(f"manifest={manifest}", "sweep=none"))
    monkeypatch.setattr(loop, "export_frames", real_export)
    rerun = run(make_config(f"manifest={manifest}", "sweep=none"))
    assert len(rerun.records) == 1 and rerun.summary["jobs_skipped"] == 1


# --- bad input --------------------------------------------------------------------------------------------------


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = write_image(tmp_path / "big.png", (64, 64))  # 4096 pixels > 2 x 100
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(str(path))


def test_non_ascii_and_spaces_in_paths_run_end_to_end(make_config, tmp_path):
    data = tmp_path / "data"
    write_image(data / "données d'été" / "café au lait.png", (128, 128))
    (data / "m.csv").write_text("image,id\ndonnées d'été/café au lait.png,café\n", encoding="utf-8")
    result = run(make_config(f"manifest={data / 'm.csv'}", "sweep=none"))
    assert result.records[0].ok and result.records[0].id == "café"


def test_incomplete_model_folder_is_named(tmp_path):
    folder = tmp_path / "model"
    build_tiny_pipeline().save_pretrained(folder, safe_serialization=True)
    os.remove(folder / "unet" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(ModelLoadError, match="could not load the SVD pipeline from folder"):
        from_pretrained(str(folder), None, None, torch.float32)


# --- security ---------------------------------------------------------------------------------------------------


def test_index_cells_that_spreadsheets_would_run_are_escaped(make_config, tmp_path):
    record = JobRecord(job_id="j", id="-2+3", image="=HYPERLINK(x)", status="failed", params={}, model="m",
                       hardware="cpu", error="@SUM(1)")  # fmt: skip
    row = record.row()
    assert (row["id"], row["image"], row["error"]) == ("'-2+3", "'=HYPERLINK(x)", "'@SUM(1)")
    manifest = manifest_with(tmp_path, ["a.png"])
    manifest.write_text("image,id\na.png,-1+1\n")
    result = run(make_config(f"manifest={manifest}", "sweep=none"))
    assert pd.read_csv(result.output_dir / "index.csv").id[0] == "'-1_1"


def test_wandb_key_is_never_written(make_config, tmp_path, monkeypatch):
    secret = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    result = run(make_config(f"manifest={manifest_with(tmp_path, ['a.png'])}", "sweep=none", "tracking.mode=offline"))
    for path in result.output_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
