"""The benchmark's CPU path on the tiny model: seed recipe and svd-batch profile side by side, one process."""

from __future__ import annotations

import json
import subprocess
import sys

from svd_batch.bench import SEED_RECIPES, bench_jobs, markdown_table
from svd_batch.config import SampleParams
from tests.conftest import REPO


def test_cpu_bench_runs_the_seed_recipe_and_our_profile_side_by_side(cache_dir, tmp_path):
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, "-m", "svd_batch.bench", "model=tiny", "model.init=tiny", f"output_dir={out}",
         "bench.seed_recipes=[seed_plain,seed_offload]", "bench.reference=seed_plain",
         'bench.profiles=[cpu,"cpu hardware.step_cache_interval=2"]',
         "bench.jobs=2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "bench.json").read_text())
    meta, rows = report["meta"], {r["name"]: r for r in report["results"]}

    assert meta["video_tflop"] > 0 and meta["unet_tflop_per_step"] > 0  # counted with FlopCounterMode
    assert meta["peak_tflops"] is None and meta["compute_floor_s"] is None  # no GPU ceiling on a CPU
    assert rows["seed_offload"]["skipped"] == "needs a GPU"
    for name in ("seed_plain", "cpu"):
        row = rows[name]
        assert row["skipped"] is None and row["s_per_video"] > 0 and row["s_min"] <= row["s_max"]
        assert row["denoise_s"] > 0 and row["decode_s"] > 0 and row["export_s"] > 0 and row["warmup_s"] > 0
    assert report["baseline"] == "seed_plain" and rows["seed_plain"]["speedup_vs_seed"] == 1.0
    # svd-batch's runner and the seed guide's plain call render the same frames
    assert rows["cpu"]["max_abs_diff"] == 0 and rows["seed_plain"]["max_abs_diff"] == 0
    assert "| cpu | svd-batch | 8 |" in (out / "bench.md").read_text()
    assert len(list(out.glob("seed_plain-*.mp4"))) == 3  # the seed's own export_to_video output
    # an entry with overrides of its own profile: labelled approximate, compared with exact frames
    approx = rows["cpu hardware.step_cache_interval=2"]
    assert approx["kind"] == "svd-batch, approximate (stepcache2)" and approx["s_per_video"] > 0
    assert approx["max_abs_diff"] > 0 and 20 < approx["psnr_db"] < float("inf")


def test_bench_jobs_vary_seed_and_motion_and_take_the_configuration_decode_chunk():
    sample = SampleParams(num_frames=8, num_inference_steps=4, height=128, width=128)
    jobs = bench_jobs(sample, 3, "m", decode_chunk_size=2)
    assert [j.params.seed for j in jobs] == [0, 1, 2]
    assert len({j.params.motion_bucket_id for j in jobs}) == 3
    assert {j.params.decode_chunk_size for j in jobs} == {2}
    pinned = bench_jobs(SampleParams(num_frames=8, height=128, width=128, decode_chunk_size=4), 1, "m", 2)
    assert pinned[0].params.decode_chunk_size == 4
    assert SEED_RECIPES["seed_lowmem"] == ("model_offload", True, 2, False)  # the guide's low-memory recipe


def test_markdown_table_marks_skipped_rows():
    meta = {"model": "m", "device": "d", "torch": "t", "diffusers": "x", "date": "now", "warmup_jobs": 1, "jobs": 2,
            "video_tflop": 1.0, "unet_tflop_per_step": 0.1, "vae_decode_tflop": 0.2,
            "sample": {"num_frames": 8, "height": 64, "width": 64, "num_inference_steps": 2}}  # fmt: skip
    row = {"name": "seed_offload", "kind": "seed", "skipped": "needs a GPU"}
    text = markdown_table({"meta": meta, "baseline": None, "reference": "r", "results": [row]})
    assert "| seed_offload | seed | | skipped: needs a GPU |" in text
