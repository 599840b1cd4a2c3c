"""Config composition (every group option through hydra.compose), validation, and hardware profile selection."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from svd_batch.config import CompileScope, ConfigError, ExportFormat, ModelInit, Placement, load_config
from svd_batch.engine.accelerator import GpuInfo
from svd_batch.engine.hardware import FastPaths, PlanFacts, describe, resolve_hardware
from tests.conftest import CONF_DIR, REPO

GROUPS = {group: sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")) for group in ("model", "hardware", "sweep")}


def test_default_composes_to_the_tiny_demo(compose_cfg):
    config = load_config(compose_cfg("output_dir=/tmp/x"))
    assert config.model.name == "tiny" and config.model.init is ModelInit.tiny
    assert config.hardware.name == "auto"
    assert config.sweep.grid.axes() == {"motion_bucket_id": [64, 180]}
    # sample defaults come from the model variant
    assert (config.sample.num_frames, config.sample.height, config.sample.width) == (8, 128, 128)
    assert config.export.format is ExportFormat.mp4 and config.export.fps == 7
    assert config.tracking.mode.value == "offline"


@pytest.mark.parametrize("group,option", [(g, o) for g, options in GROUPS.items() for o in options])
def test_every_group_option_composes(compose_cfg, group, option):
    config = load_config(compose_cfg("output_dir=/tmp/x", f"{group}={option}"))
    assert getattr(config, group).name == option


@pytest.mark.parametrize(
    "variant,frames,path",
    [
        ("svd", 14, "stabilityai/stable-video-diffusion-img2vid"),
        ("svd_xt", 25, "stabilityai/stable-video-diffusion-img2vid-xt"),
        ("svd_xt_1_1", 25, "stabilityai/stable-video-diffusion-img2vid-xt-1-1"),
    ],
)
def test_real_variants_use_the_seed_guide_settings(compose_cfg, variant, frames, path):
    config = load_config(compose_cfg("output_dir=/tmp/x", f"model={variant}", "sweep=none"))
    assert config.model.path == path and config.model.variant == "fp16"
    assert (config.sample.num_frames, config.sample.height, config.sample.width) == (frames, 576, 1024)
    assert config.sample.num_inference_steps == 25 and config.sample.seed == 42
    assert (config.sample.fps, config.sample.motion_bucket_id, config.sample.noise_aug_strength) == (7, 127, 0.02)


def test_sample_parameters_override_and_grid_sweeps_any_parameter(compose_cfg):
    config = load_config(
        compose_cfg("output_dir=/tmp/x", "sample.num_frames=4", "sweep.grid.seed=[1,2,3]", "sweep.grid.fps=[6]")
    )
    assert config.sample.num_frames == 4
    assert config.sweep.grid.axes() == {"fps": [6], "motion_bucket_id": [64, 180], "seed": [1, 2, 3]}


def test_model_path_and_random_init(compose_cfg):
    config = load_config(compose_cfg("output_dir=/tmp/x", "model=svd_xt", "model.path=/data/svd", "model.init=random"))
    assert config.model.path == "/data/svd" and config.model.init is ModelInit.random


@pytest.mark.parametrize(
    "override,expected",
    [
        ("sample.motion_bucket_id=300", "motion_bucket_id must be in 0..255"),
        ("sample.noise_aug_strength=-0.1", "noise_aug_strength must be in 0.0..1.0"),
        ("sample.num_frames=0", "num_frames must be at least 1"),
        ("sample.num_inference_steps=0", "num_inference_steps must be at least 1"),
        ("sample.height=100", "height must be a positive multiple of 64"),
        ("sample.width=1000", "width must be a positive multiple of 64"),
        ("sample.fps=0", "fps must be at least 1"),
        ("sample.max_guidance_scale=0.5", "max_guidance_scale (0.5) must be >= min_guidance_scale"),
        ("sweep.grid.motion_bucket_id=[10,256]", "sweep.grid.motion_bucket_id must be in 0..255"),
        ("sweep.grid.seed=[]", "sweep.grid.seed is empty"),
        ("export.crf=60", "export.crf must be in 0..51"),
        ("hardware.compile_unet_parts=5", "hardware.compile_unet_parts must be 1 to 4 (1 = the whole UNet as one"),
    ],
)
def test_out_of_range_values_are_refused_with_the_rule(compose_cfg, override, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_config(compose_cfg("output_dir=/tmp/x", override))


@pytest.mark.parametrize(
    "override", ["sample.motion_bucket=1", "sweep.grid.motion=[1]", "hardware.dtype=fp8", "export.format=avi"]
)
def test_unknown_keys_and_bad_enum_values_fail_at_composition(compose_cfg, override):
    with pytest.raises(ConfigCompositionException):
        compose_cfg("output_dir=/tmp/x", override)


def test_unknown_group_option_lists_the_available_ones(compose_cfg):
    with pytest.raises(MissingConfigException, match="svd_xt"):
        compose_cfg("output_dir=/tmp/x", "model=svd_xxl")


def test_wrongly_typed_value_is_refused(compose_cfg):
    with pytest.raises(ConfigCompositionException):
        compose_cfg("output_dir=/tmp/x", "sample.seed=abc")


# --- hardware profiles ------------------------------------------------------------------------------------------


def hardware(compose_cfg, profile):
    return load_config(compose_cfg("output_dir=/tmp/x", f"hardware={profile}")).hardware


@pytest.mark.parametrize(
    "gpu,name,placement,chunking,decode",
    [
        (None, "auto:cpu", Placement.resident, False, 8),
        (GpuInfo("NVIDIA H100 80GB HBM3", 79.2), "auto:resident", Placement.resident, False, 8),
        (GpuInfo("NVIDIA GeForce RTX 4080", 16.0), "auto:offload", Placement.model_offload, False, 8),
        (GpuInfo("NVIDIA GeForce RTX 3060", 12.0), "auto:lowmem", Placement.model_offload, True, 2),
    ],
)
def test_auto_picks_a_profile_from_the_gpu_and_says_why(compose_cfg, gpu, name, placement, chunking, decode):
    hw = resolve_hardware(hardware(compose_cfg, "auto"), gpu)
    assert (hw.name, hw.placement, hw.forward_chunking, hw.decode_chunk_size) == (name, placement, chunking, decode)
    assert hw.dtype == ("float32" if gpu is None else "float16")
    assert name.split(":")[1] in hw.reason


def test_seed_recipes_map_onto_profiles(compose_cfg):
    gpu = GpuInfo("NVIDIA H100", 80.0)
    offload = resolve_hardware(hardware(compose_cfg, "offload"), gpu)
    assert (offload.placement, offload.decode_chunk_size, offload.forward_chunking) == (
        Placement.model_offload,
        8,
        False,
    )
    lowmem = resolve_hardware(hardware(compose_cfg, "lowmem"), gpu)
    assert (lowmem.placement, lowmem.decode_chunk_size, lowmem.forward_chunking) == (Placement.model_offload, 2, True)
    compiled = resolve_hardware(hardware(compose_cfg, "compile"), gpu)
    assert compiled.placement is Placement.resident and compiled.compile_unet is CompileScope.full
    assert (compiled.compile_mode, compiled.compile_fullgraph, compiled.compile_vae) == ("reduce-overhead", True, False)


def test_fast_and_low_memory_profiles(compose_cfg, cache_dir):
    gpu = GpuInfo("NVIDIA H100", 80.0)
    fast = resolve_hardware(hardware(compose_cfg, "h100"), gpu)
    assert (fast.placement, fast.compile_unet, fast.compile_vae) == (Placement.resident, CompileScope.full, True)
    assert fast.compile_cache_dir == f"{cache_dir}/compiled"  # a named, persistent compile cache
    assert fast.compile_artifacts and fast.compile_background
    assert fast.unet_graphs_in_parts and "compiled unet (full, 3 parts)" in describe(fast)
    approximate = resolve_hardware(hardware(compose_cfg, "h100_fast"), gpu)  # step caching's own two graphs
    assert approximate.compile_unet_parts == 3 and not approximate.unet_graphs_in_parts
    assert "compiled unet (full)" in describe(approximate)
    low = resolve_hardware(hardware(compose_cfg, "lowvram"), gpu)
    assert (low.placement, low.forward_chunking, low.decode_chunk_size) == (Placement.model_offload, True, 2)
    assert low.compile_unet is CompileScope.none and low.compile_vae


def test_whole_unet_compile_with_offload_is_refused(compose_cfg):
    cfg = load_config(compose_cfg("output_dir=/tmp/x", "hardware=offload", "hardware.compile_unet=full")).hardware
    with pytest.raises(ConfigError, match="compile_unet=blocks"):
        resolve_hardware(cfg, GpuInfo("NVIDIA H100", 80.0))


def test_gpu_profile_without_a_gpu_says_what_to_use(compose_cfg):
    with pytest.raises(ConfigError, match="hardware=cpu"):
        resolve_hardware(hardware(compose_cfg, "resident"), None)


# --- hardware=auto: compiled when it pays ---------------------------------------------------------------------------

H100 = GpuInfo("NVIDIA H100 80GB HBM3", 79.2, free_gib=78.5)


@pytest.mark.parametrize(
    "facts,compiled,why",
    [
        (PlanFacts(eager_s=24 * 18.9, compiled_cached=False, videos=24), True, "24 videos take ~8 min eagerly"),
        (PlanFacts(eager_s=2 * 18.9, compiled_cached=False, videos=2), False, "less than compiling would take"),
        (PlanFacts(eager_s=18.9, compiled_cached=True, videos=1), True, "compiled graphs for this model and shape"),
        (None, False, "nothing known about the plan"),
    ],
)
def test_auto_compiles_when_it_pays_and_says_why(compose_cfg, facts, compiled, why):
    hw = resolve_hardware(hardware(compose_cfg, "auto"), H100, facts)
    assert (hw.compile_unet is CompileScope.full) == compiled and hw.compile_vae == compiled
    assert hw.name == ("auto:h100" if compiled else "auto:resident") and why in hw.reason
    assert hw.placement is Placement.resident and hw.compile_artifacts
    # the same compiled settings as hardware=h100, so the two share compiled artifacts
    h100 = resolve_hardware(hardware(compose_cfg, "h100"), H100)
    assert (hw.fast_paths, hw.inductor, hw.compile_cache_dir) == (
        h100.fast_paths,
        h100.inductor,
        h100.compile_cache_dir,
    )


def test_auto_judges_by_free_memory_and_never_compiles_offloaded_profiles(compose_cfg):
    long_plan = PlanFacts(eager_s=3600.0, compiled_cached=True, videos=200)
    busy = GpuInfo("NVIDIA H100 80GB HBM3", 79.2, free_gib=15.0)  # another process holds most of it
    hw = resolve_hardware(hardware(compose_cfg, "auto"), busy, long_plan)
    assert hw.name == "auto:offload" and "15 GiB free" in hw.reason
    assert hw.compile_unet is CompileScope.none and not hw.compile_vae
    on_cpu = resolve_hardware(hardware(compose_cfg, "auto"), None, long_plan)
    assert on_cpu.name == "auto:cpu" and on_cpu.fast_paths == FastPaths() and on_cpu.compile_unet is CompileScope.none


def test_plan_facts_find_cached_graphs_for_the_planned_shape(compose_cfg, cache_dir, tmp_path, monkeypatch):
    from svd_batch.batch.manifest import read_manifest
    from svd_batch.batch.plan import model_identity
    from svd_batch.batch.runner import plan_facts
    from svd_batch.engine import artifacts
    from svd_batch.engine.artifacts import ArtifactStore, attention_fields, environment_fields, unet_graph_names

    config = load_config(compose_cfg("output_dir=/tmp/x", "model=svd_xt", "model.init=random", f"cache_dir={tmp_path}"))
    rows = read_manifest(REPO / "svd_batch" / "samples" / "manifest.csv")
    facts = plan_facts(config, rows, {"seed": [0, 1]}, H100)
    assert facts.videos == 6 and facts.eager_s == pytest.approx(6 * 18.9) and not facts.compiled_cached
    store = ArtifactStore(tmp_path / "compiled" / "artifacts")
    paths = resolve_hardware(config.hardware, H100, facts).fast_paths  # auto's: h100's
    fields = {
        "model": model_identity(config.model, "float16"), "dtype": "float16", "fast_paths": paths.tag(),
        **environment_fields(H100.name), **attention_fields(paths), "shape": [2, 25, 8, 72, 128],
    }  # fmt: skip
    parts = unet_graph_names(config.hardware.compile_unet_parts)  # h100's UNet in parts: cached when all are
    assert len(parts) == 3
    for name in parts[:-1]:
        store.write(f"{name}-test", b"graph", {"function": name, **fields})
    assert not plan_facts(config, rows, {"seed": [0, 1]}, H100).compiled_cached
    store.write(f"{parts[-1]}-test", b"graph", {"function": parts[-1], **fields})
    assert plan_facts(config, rows, {"seed": [0, 1]}, H100).compiled_cached
    for name in parts:
        store.remove(f"{name}-test")
    store.write("unet-test", b"graph", {"function": "unet", **fields})  # or the whole UNet's graph
    assert plan_facts(config, rows, {"seed": [0, 1]}, H100).compiled_cached
    version = artifacts.package_version
    monkeypatch.setattr(artifacts, "package_version", lambda name: "4.0" if name == "flash-attn-4" else version(name))
    assert fields["flash_attn_4"] != "4.0"  # built before FlashAttention-4 was installed: it would be built again
    assert not plan_facts(config, rows, {"seed": [0, 1]}, H100).compiled_cached
    other_size = plan_facts(config, rows, {"seed": [0], "height": [512]}, H100)  # another shape: not cached
    assert not other_size.compiled_cached


def test_a_cold_start_builds_the_quickest_way_and_the_preferred_one():
    from svd_batch.batch.runner import builds_for_shape
    from svd_batch.engine.artifacts import unet_graph_choices

    graphs = unet_graph_choices(3)  # the whole UNet preferred; its 3 parts quickest to build
    assert graphs == [["unet"], ["unet_part1of3", "unet_part2of3", "unet_part3of3"]]
    assert builds_for_shape(graphs, [False, False]) == 4  # the parts now, the whole graph for later
    assert builds_for_shape(graphs, [False, True]) == 1 and builds_for_shape(graphs, [True, False]) == 0
    assert builds_for_shape(unet_graph_choices(1), [False]) == 1


def test_multirun_values_that_change_the_pixels_change_the_job_ids(compose_cfg, monkeypatch):
    """A multirun over hardware or model shares one folder: its jobs must not stand in for each other on resume,
    except where only the speed differs (exact profiles at one precision)."""
    from svd_batch.batch import runner

    monkeypatch.setattr(runner, "detect_gpu", lambda device: H100)

    def job_ids(*overrides: str) -> set[str]:
        cfg = compose_cfg("output_dir=/tmp/x", "model.init=random", "sweep=none", *overrides)
        return {job.job_id for job in runner.make_plan(load_config(cfg)).jobs}

    exact = job_ids("model=svd_xt", "hardware=h100")
    assert job_ids("model=svd_xt", "hardware=h100_fast").isdisjoint(exact)  # approximate: other pixels
    assert job_ids("model=svd_xt", "hardware=h100_fast", "hardware.step_cache_interval=3").isdisjoint(
        job_ids("model=svd_xt", "hardware=h100_fast")
    )
    assert job_ids("model=svd", "hardware=h100").isdisjoint(exact)
    assert job_ids("model=svd_xt", "hardware=resident") == exact  # the same video, only faster or slower
