"""Planning: grid expansion, deterministic order, stable job ids, row overrides."""

from __future__ import annotations

import dataclasses

import pytest

from svd_batch.batch.manifest import ManifestError, ManifestRow
from svd_batch.batch.plan import (
    compiled_graph_shapes,
    describe_plan,
    estimate_seconds_per_job,
    expand_grid,
    job_id_for,
    plan_jobs,
)
from svd_batch.config import SampleParams
from tests.conftest import write_image

BASE = SampleParams(num_frames=8, num_inference_steps=4, height=128, width=128)


def test_grid_is_the_cartesian_product_with_the_first_axis_slowest():
    points = expand_grid({"motion_bucket_id": [1, 2], "seed": [7, 8, 9]})
    assert points == [
        {"motion_bucket_id": 1, "seed": 7}, {"motion_bucket_id": 1, "seed": 8}, {"motion_bucket_id": 1, "seed": 9},
        {"motion_bucket_id": 2, "seed": 7}, {"motion_bucket_id": 2, "seed": 8}, {"motion_bucket_id": 2, "seed": 9},
    ]  # fmt: skip
    assert expand_grid({}) == [{}]


@pytest.fixture
def rows(tmp_path):
    a = write_image(tmp_path / "a.png", seed=1)
    b = write_image(tmp_path / "b.png", seed=2)
    return [ManifestRow(2, "a", str(a)), ManifestRow(3, "b", str(b), {"seed": 5})]


def test_jobs_are_rows_times_grid_in_order_with_row_overrides(rows):
    jobs = plan_jobs(rows, BASE, {"motion_bucket_id": [64, 180]}, "m", default_decode_chunk_size=8)
    assert [(j.item_id, j.params.motion_bucket_id, j.params.seed) for j in jobs] == [
        ("a", 64, 42), ("a", 180, 42), ("b", 64, 5), ("b", 180, 5),
    ]  # fmt: skip
    assert all(j.params.decode_chunk_size == 8 for j in jobs)
    assert len({j.job_id for j in jobs}) == 4


def test_job_ids_are_stable_and_depend_on_content_params_and_model(rows, tmp_path):
    first = plan_jobs(rows, BASE, {}, "m", 8)
    assert [j.job_id for j in first] == [j.job_id for j in plan_jobs(rows, BASE, {}, "m", 8)]
    assert first[0].job_id != plan_jobs(rows, BASE, {}, "other-model", 8)[0].job_id
    assert first[0].job_id != plan_jobs(rows, dataclasses.replace(BASE, fps=6), {}, "m", 8)[0].job_id
    assert first[0].job_id != plan_jobs(rows, BASE, {}, "m", 4)[0].job_id  # decode chunk changes pixels
    # same content under another name: same job; changed content under the same name: new job
    copy = write_image(tmp_path / "copy.png", seed=1)
    assert plan_jobs([ManifestRow(2, "a", str(copy))], BASE, {}, "m", 8)[0].job_id == first[0].job_id
    write_image(tmp_path / "a.png", seed=99)
    assert plan_jobs(rows[:1], BASE, {}, "m", 8)[0].job_id != first[0].job_id


def test_job_id_is_a_hash_of_its_inputs():
    assert job_id_for("sha256:x", BASE, "m") == job_id_for("sha256:x", SampleParams(**dataclasses.asdict(BASE)), "m")
    assert len(job_id_for("sha256:x", BASE, "m")) == 16


def test_a_row_pinning_a_swept_parameter_is_done_once(rows):
    pinned = [ManifestRow(2, "a", rows[0].image, {"motion_bucket_id": 100})]
    jobs = plan_jobs(pinned, BASE, {"motion_bucket_id": [64, 180]}, "m", 8)
    assert [j.params.motion_bucket_id for j in jobs] == [100]


def test_missing_image_still_becomes_a_job(tmp_path):
    jobs = plan_jobs([ManifestRow(2, "gone", str(tmp_path / "gone.png"))], BASE, {}, "m", 8)
    assert len(jobs) == 1  # it fails when it runs, with a row in the index


def test_combined_parameters_are_checked(rows):
    with pytest.raises(ManifestError, match=r"line 2 \(a\): max_guidance_scale"):
        plan_jobs(rows[:1], BASE, {"max_guidance_scale": [0.5]}, "m", 8)


def test_plan_description_and_estimate(rows):
    jobs = plan_jobs(rows, BASE, {"fps": [6, 12]}, "m", 8)
    per_job = estimate_seconds_per_job([j.params for j in jobs], "gpu")
    assert per_job == pytest.approx(18.9 * (8 * 128 * 128 * 4) / (25 * 576 * 1024 * 25))
    text = describe_plan(jobs, {"fps": [6, 12]}, per_job)
    assert "4 job(s): 2 image(s) x 2 grid point(s)" in text and "grid fps = [6, 12]" in text
    assert "estimated time" in text and all(j.job_id in text for j in jobs)


def test_compiled_graph_shapes_are_the_unets_and_each_decode_chunks():
    svd_xt = SampleParams(num_frames=25, height=576, width=1024, decode_chunk_size=8, max_guidance_scale=3.0)
    shapes = compiled_graph_shapes([svd_xt, dataclasses.replace(svd_xt, seed=7)])  # one shape for both
    assert shapes == {"unet": {(2, 25, 8, 72, 128)}, "vae_decoder": {(8, 4, 72, 128), (1, 4, 72, 128)}}
    no_guidance = dataclasses.replace(svd_xt, num_frames=14, max_guidance_scale=1.0, decode_chunk_size=14)
    assert compiled_graph_shapes([no_guidance]) == {"unet": {(1, 14, 8, 72, 128)}, "vae_decoder": {(14, 4, 72, 128)}}
    big_chunk = dataclasses.replace(svd_xt, decode_chunk_size=32)  # one chunk of all the frames
    assert compiled_graph_shapes([big_chunk])["vae_decoder"] == {(25, 4, 72, 128)}
    assert compiled_graph_shapes([dataclasses.replace(svd_xt, decode_chunk_size=None)])["vae_decoder"] == set()
