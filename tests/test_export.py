"""Export: every format decodes back to the right frame count and size; writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest

from svd_batch.config import ExportConfig, ExportFormat
from svd_batch.results import export as export_module
from svd_batch.results.export import export_frames, output_name, read_frames

FRAMES = np.random.default_rng(0).integers(0, 256, (5, 64, 128, 3), dtype=np.uint8)
SMOOTH = np.stack([np.full((64, 128, 3), 40 * i, np.uint8) for i in range(5)])


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_each_format_round_trips(tmp_path, fmt):
    target = tmp_path / output_name("abc", fmt)
    export_frames(SMOOTH, target, ExportConfig(format=fmt, fps=7))
    frames = read_frames(target)
    assert frames.shape == SMOOTH.shape
    assert np.abs(frames.astype(int) - SMOOTH).mean() < 6  # lossy formats stay close on smooth content
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no partial files left


def test_png_frames_are_lossless(tmp_path):
    target = export_frames(FRAMES, tmp_path / "job", ExportConfig(format=ExportFormat.png))
    assert np.array_equal(read_frames(target), FRAMES)
    assert sorted(p.name for p in target.iterdir())[0] == "frame_0000.png"


def test_mp4_is_h264_yuv420p_at_the_export_fps(tmp_path):
    import imageio_ffmpeg

    target = export_frames(FRAMES, tmp_path / "v.mp4", ExportConfig(fps=12))
    meta = next(imageio_ffmpeg.read_frames(str(target)))
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p") and meta["fps"] == 12


def test_a_failed_write_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    def half_written(frames, path, export):
        path.write_bytes(b"half a video")
        raise OSError("disk full")

    monkeypatch.setitem(export_module._WRITERS, ExportFormat.mp4, half_written)
    with pytest.raises(OSError, match="disk full"):
        export_frames(FRAMES, tmp_path / "v.mp4", ExportConfig())
    assert list(tmp_path.iterdir()) == []


def test_rewriting_a_png_folder_replaces_it(tmp_path):
    target = tmp_path / "job"
    export_frames(FRAMES, target, ExportConfig(format=ExportFormat.png))
    export_frames(FRAMES[:2], target, ExportConfig(format=ExportFormat.png))
    assert len(list(target.iterdir())) == 2
