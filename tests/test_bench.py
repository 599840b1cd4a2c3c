"""The benchmark's CPU path on the tiny model: seed recipe and svd-batch profile side by side, one process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from svd_batch.bench import SEED_RECIPES, bench_jobs, markdown_table
from svd_batch.config import SampleParams
from tests.conftest import REPO

# compiled graphs from the session's store (building them, in the background too: tests/test_compiled.py)
COMPILED = (
    "cpu hardware.compile_unet=full hardware.compile_artifacts=true "
    "hardware.compile_backend=aot_eager hardware.cross_attention_shortcut=true"
)


def test_cpu_bench_runs_the_seed_recipe_and_our_profiles_side_by_side(cache_dir, compiled_tiny, tmp_path):
    out = tmp_path / "bench"
    compiled_root = compiled_tiny[0].store.parent
    result = subprocess.run(
        [sys.executable, "-m", "svd_batch.bench", "model=tiny", "model.init=tiny", f"output_dir={out}",
         "sample.num_inference_steps=4",
         "bench.seed_recipes=[seed_plain,seed_offload]", "bench.reference=seed_plain",
         f'bench.profiles=[cpu,"cpu sample.segments=2","cpu hardware.step_cache_interval=2","{COMPILED} '
         f'hardware.compile_cache_dir={compiled_root}"]',
         "bench.jobs=1", "bench.sweep.modes=[cold]", "bench.sweep.images=1", "bench.sweep.motion_bucket_ids=[64]",
         "bench.sweep.seeds=[0]", "bench.sweep.hardware=cpu", "bench.sweep.baseline=seed_plain",
         f"bench.sweep.cache_dir={tmp_path / 'sweep-cache'}"],
        cwd=REPO, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "bench.json").read_text())
    meta, rows = report["meta"], {r["name"]: r for r in report["results"]}

    assert meta["video_tflop"] > 0 and meta["unet_tflop_per_step"] > 0  # counted with FlopCounterMode
    assert meta["peak_tflops"] is None and meta["compute_floor_s"] is None  # no GPU ceiling on a CPU
    assert rows["seed_offload"]["skipped"] == "needs a GPU"
    compiled = rows[f"{COMPILED} hardware.compile_cache_dir={compiled_root}"]
    for row in (rows["seed_plain"], compiled):
        assert row["skipped"] is None and row["s_per_video"] > 0 and row["s_min"] <= row["s_max"]
        assert row["denoise_s"] > 0 and row["decode_s"] > 0 and row["export_s"] > 0 and row["warmup_s"] > 0
    assert report["baseline"] == "seed_plain" and rows["seed_plain"]["speedup_vs_seed"] == 1.0
    assert rows["seed_plain"]["max_abs_diff"] == 0
    assert f"| {COMPILED} hardware.compile_cache_dir=" in (out / "bench.md").read_text()
    assert len(list(out.glob("seed_plain-*.mp4"))) == 2  # the seed's own export_to_video output (warm-up + 1)
    # an entry with overrides of its own profile: labelled approximate, compared with exact frames
    approx = rows["cpu hardware.step_cache_interval=2"]
    assert approx["kind"] == "svd-batch, approximate (stepcache2)" and approx["s_per_video"] > 0
    assert approx["max_abs_diff"] > 0 and 20 < approx["psnr_db"] < float("inf")
    # ... and in the user's terms: how far its measured motion and flicker move from the exact reference's video
    assert set(approx["quality_diff"]) == {"motion_px", "flicker"} and approx["quality_diff"]["flicker"] > 0
    assert approx["quality_s"] > 0  # what the per-video quality measures cost, beside the stage times
    # a two-segment video against two of the same profile's one-segment videos
    chained = rows["cpu sample.segments=2"]
    assert chained["segments"] == 2 and rows["cpu"]["segments"] == 1 and chained["max_abs_diff"] is None
    assert chained["vs_one_segment"] == pytest.approx(chained["s_per_video"] / (2 * rows["cpu"]["s_per_video"]))
    assert "- cpu sample.segments=2: " in (out / "bench.md").read_text()
    # a profile with compiled graphs, loaded from the store (the same keys as run.py's) and timed on them: the same
    # frames as the seed guide's plain call, within a rounding level
    assert compiled["compile_s"] == compiled_tiny[1]["build_s"] and compiled["max_abs_diff"] <= 1
    exact_diff, approx_diff = compiled["quality_diff"], approx["quality_diff"]
    assert exact_diff["flicker"] < approx_diff["flicker"] and max(exact_diff.values()) < 0.5, (exact_diff, approx_diff)
    assert f"loaded compiled {compiled_tiny[1]['key']}" in result.stdout + result.stderr
    # the whole command over a sweep with an empty cache, against the seed loop over the same videos
    [cold] = report["sweep"]
    assert cold["mode"] == "cold" and cold["ok"] == cold["videos"] == 1 and cold["returncode"] == 0
    assert 0 < cold["first_video_s"] <= cold["last_video_s"] <= cold["wall_s"]
    assert cold["seed_loop_s"] == pytest.approx(rows["seed_plain"]["s_per_video"], abs=0.1)
    assert cold["fraction_of_seed_loop"] == pytest.approx(cold["wall_s"] / cold["seed_loop_s"], rel=0.01)
    assert "| cold | 1 | 1 | cpu |" in (out / "bench.md").read_text()


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
