"""Compiled artifacts on the CPU: keys, integrity, reuse by a later process, background builds, concurrent builders.

The `aot_eager` backend stands in for inductor (same ahead-of-time trace and serialization, no code generation), so
these run in seconds on a CPU; the GPU benchmark exercises inductor."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from svd_batch.config import AttentionBackend
from svd_batch.engine import artifacts, builders, compiled
from svd_batch.engine.artifacts import ArtifactStore, artifact_key, unet_graph_names
from svd_batch.engine.compiled import Compiler, CompileSettings
from svd_batch.engine.hardware import FastPaths
from svd_batch.engine.models import build_tiny_pipeline
from svd_batch.engine.unet_fast import install
from tests.conftest import REPO, tiny_denoise, tiny_unet_inputs

FAST = FastPaths(single_token_cross_attention=True)


def make_settings(root: Path) -> CompileSettings:
    return CompileSettings(
        store=root / "artifacts", inductor_cache=root / "inductor", model="tiny:tiny:::float32", device="cpu",
        device_name="cpu", dtype="float32", fast_paths=FAST, backend="aot_eager", background=False,
    )  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path) -> CompileSettings:
    return make_settings(tmp_path)


@pytest.fixture
def built(compiled_tiny):
    """An artifact of the tiny UNet that a first run built (shared with the bench test: compiling takes ~20 s)."""
    return compiled_tiny


def tiny_unet():
    unet = build_tiny_pipeline().unet.eval()
    install(unet, FAST)
    return unet


inputs = tiny_unet_inputs
denoise = tiny_denoise


def no_compiling(*_, **__):
    pytest.fail("compiled again although the artifact exists")


# --- keys and the store ---------------------------------------------------------------------------------------------


def test_every_field_of_the_key_matters(settings, monkeypatch):
    call = compiled.CompiledCall(Compiler(settings), "unet", torch.nn.Module(), {"in_channels": 8})
    signature = compiled.signature_of(inputs())

    def key(settings=settings, signature=signature, config=None):
        return artifact_key("unet", compiled.key_fields(settings, "unet", config or call.module_config, signature))

    base = key()
    assert key() == base  # stable
    changed = [
        key(settings=dataclasses.replace(settings, dtype="float16")),
        key(settings=dataclasses.replace(settings, model="svd_xt:random")),
        key(settings=dataclasses.replace(settings, device_name="NVIDIA H100 80GB HBM3")),
        key(settings=dataclasses.replace(settings, fast_paths=FastPaths())),
        key(settings=dataclasses.replace(settings, inductor={"coordinate_descent_tuning": True})),
        key(signature=compiled.signature_of(inputs(width=24))),
        key(config={"in_channels": 4}),
    ]
    monkeypatch.setattr(artifacts, "package_version", lambda name: "9.9" if name == "torch" else "1.0")
    changed.append(key())
    monkeypatch.undo()
    monkeypatch.setattr(artifacts, "engine_code_hash", lambda: "edited")
    changed.append(key())
    assert len({base, *changed}) == len(changed) + 1


def test_a_unet_asking_for_flash_attention_4_is_keyed_by_whether_it_is_installed(settings, monkeypatch):
    """Where flash-attn-4 is missing the graph is built with torch's attention: installing it must rebuild."""
    fa4 = dataclasses.replace(settings, fast_paths=FastPaths(spatial_attention=AttentionBackend.fa4))
    signature = compiled.signature_of(inputs())
    installed = {"flash-attn-4": "none"}
    monkeypatch.setattr(artifacts, "package_version", lambda name: installed.get(name, "1.0"))

    def key(settings):
        return artifact_key("unet", compiled.key_fields(settings, "unet", {}, signature))

    missing, other = key(fa4), key(settings)
    installed["flash-attn-4"] = "4.0.0b36"
    assert key(fa4) != missing and key(settings) == other  # profiles without it keep their artifacts
    temporal = dataclasses.replace(settings, fast_paths=FastPaths(temporal_attention=AttentionBackend.fa4))
    assert compiled.key_fields(temporal, "unet", {}, signature)["flash_attn_4"] == "4.0.0b36"  # either kind
    assert "flash_attn_4" not in compiled.key_fields(fa4, "vae_decoder", {}, signature)  # the decoder has none
    assert compiled.key_fields(fa4, "unet", {}, signature)["flash_attn_4"] == "4.0.0b36"


def test_store_refuses_partial_and_corrupt_artifacts(tmp_path):
    store = ArtifactStore(tmp_path)
    meta = store.write("unet-abc", b"compiled bytes", {"function": "unet", "model": "m"})
    assert store.read("unet-abc") == b"compiled bytes" and meta["size"] == 14
    assert store.find("unet", {"model": "m"}) and not store.find("unet", {"model": "other"})

    (store.folder("unet-abc") / "artifact.bin").write_bytes(b"compiled bytez")  # same size, other content
    assert store.read("unet-abc") is None and not store.folder("unet-abc").exists()  # removed, to be rebuilt

    store.write("unet-def", b"x", {"function": "unet"})
    (store.folder("unet-def") / "meta.json").unlink()  # a build killed before its metadata was written
    assert store.read("unet-def") is None and store.meta("unet-def") is None
    (store.folder("unet-def") / "meta.json").write_text(json.dumps({"key": "unet-other"}))
    assert store.read("unet-def") is None  # metadata of another artifact


# --- build, reuse, rebuild ------------------------------------------------------------------------------------------


def test_artifact_is_built_once_then_loaded_and_reads_the_callers_weights(built, monkeypatch):
    settings, meta, expected = built
    assert meta["build_s"] > 0 and meta["fast_paths"] == "xattn1" and meta["model"] == "tiny:tiny:::float32"
    # a later process: a new model object and compiler; the artifact loads, nothing is traced or compiled again
    monkeypatch.setattr(compiled, "compile_function", no_compiling)
    later_unet = tiny_unet()
    assert torch.allclose(denoise(later_unet), expected)
    with torch.no_grad():
        later_unet.conv_out.weight.mul_(2)  # its own weights: the artifact reads them at call time
    reference = denoise(later_unet)
    later = Compiler(settings)
    later.install_unet(later_unet)
    assert torch.allclose(denoise(later_unet), reference, atol=1e-6) and not torch.allclose(reference, expected)
    assert later.loaded_keys == [meta["key"]]


def test_loading_skips_torchs_copy_of_the_graph_for_serializing_it_again(built, monkeypatch):
    """torch deep-copies each loaded graph's cache entry in case it is serialized again (half of the UNet's load on
    the H200); svd-batch never does, and skips the copy: the loaded function still computes the same."""
    settings, meta, expected = built
    copied: list[str] = []
    real = copy.deepcopy
    monkeypatch.setattr(
        copy, "deepcopy", lambda value, memo=None: copied.append(type(value).__name__) or real(value, memo)
    )
    data = ArtifactStore(settings.store).read(meta["key"])
    torch.compiler.load_compiled_function(io.BytesIO(data))  # torch's own loading copies the entry
    assert "BundledAOTAutogradResult" in copied
    copied.clear()
    loaded = Compiler(settings).load(meta["key"])
    assert "BundledAOTAutogradResult" not in copied and copy.deepcopy is not real  # (the spy is back in place)
    unet = tiny_unet()
    sample, t, context, time_ids = inputs()
    with torch.no_grad():
        assert torch.allclose(loaded(unet, sample, t, context, time_ids), expected, atol=1e-6)


def test_prefetched_artifacts_load_on_the_loader_thread_and_the_first_call_waits_for_them(built, monkeypatch):
    settings, meta, expected = built
    threads, release = [], threading.Event()
    real = torch.compiler.load_compiled_function

    def load(data):
        threads.append(threading.current_thread().name)
        assert torch._inductor.config.compile_threads == 1  # no pool of compile workers started for a load
        assert release.wait(10)  # still loading when the first call comes
        return real(data)

    monkeypatch.setattr(torch.compiler, "load_compiled_function", load)
    monkeypatch.setattr(compiled, "compile_function", no_compiling)
    unet = tiny_unet()
    compiler = Compiler(settings)
    compiler.install_unet(unet)
    assert compiler.prefetch({"unet": {(2, 8, 8, 16, 24)}}) == []  # no artifact of that shape
    # the plan's shapes; no decoder call is installed, so no decoder artifact is looked for
    assert compiler.prefetch({"unet": {(2, 8, 8, 16, 16)}, "vae_decoder": {(8, 4, 16, 16)}}) == [meta["key"]]
    assert threads == [] or threads == ["artifact-load_0"]
    threading.Timer(0.3, release.set).start()
    assert torch.allclose(denoise(unet), expected, atol=1e-6)  # the prefetched graph, awaited
    assert threads == ["artifact-load_0"] and compiler.loaded_keys == [meta["key"]]  # loaded once
    assert torch._inductor.config.compile_threads != 1 or (os.cpu_count() or 1) == 1  # restored after the load
    compiler.close()


def test_step_caching_graphs_are_prefetched_by_the_unets_shape_and_a_bad_one_is_removed(built, tmp_path):
    settings, _, _ = built
    settings = dataclasses.replace(settings, store=tmp_path / "artifacts")
    compiler = Compiler(settings)
    call = compiler.call("unet_full_step", torch.nn.Module(), tiny_unet())
    signature = compiled.signature_of(inputs())
    key, fields = compiler.key(call, signature)
    compiler.store.write(key, b"not a compiled graph", {**fields, "function": "unet_full_step"})
    assert compiler.prefetch({"unet": {(2, 8, 8, 16, 16)}}) == [key]
    assert compiler.load(key) is None and compiler.store.read(key) is None  # did not load: removed, to be rebuilt
    compiler.close()


def test_a_run_prefetches_its_compiled_graphs_before_the_first_video(
    built, make_config, two_images, monkeypatch, caplog
):
    """run.py's wiring: the plan's shapes go to the compiler before the first job, and the UNet's artifact loads on
    the loader thread."""
    from svd_batch.batch.runner import run

    settings, meta, _ = built
    events = []
    real_prefetch, real_call = Compiler.prefetch, compiled.CompiledCall.__call__

    def prefetch(self, shapes):
        events.append(("prefetch", shapes))
        return real_prefetch(self, shapes)

    def call(self, *args):
        events.append(("call", self.function))
        return real_call(self, *args)

    monkeypatch.setattr(Compiler, "prefetch", prefetch)
    monkeypatch.setattr(compiled.CompiledCall, "__call__", call)
    monkeypatch.setattr(compiled, "compile_function", no_compiling)
    caplog.set_level("INFO", logger="svd_batch.engine.compiled")
    config = make_config(
        f"manifest={two_images}", "sweep=none", "hardware=cpu", "hardware.compile_unet=full",
        "hardware.compile_artifacts=true", "hardware.compile_backend=aot_eager",
        "hardware.cross_attention_shortcut=true", f"hardware.compile_cache_dir={settings.store.parent}",
    )  # fmt: skip
    result = run(config)
    assert [r.status for r in result.records] == ["ok", "ok"]
    assert events[0] == ("prefetch", {"unet": {(2, 8, 8, 16, 16)}, "vae_decoder": {(8, 4, 16, 16)}})
    assert events[1] == ("call", "unet")
    [loaded] = [r for r in caplog.records if r.getMessage().startswith(f"loaded compiled {meta['key']}")]
    assert loaded.threadName == "artifact-load_0"


@pytest.fixture
def build_events(monkeypatch) -> list[tuple]:
    """("build", function, signature) for each background build a run submits, ("call", function, signature) for each
    call of a compiled function, ("stopped",) for each builder stopped, ("standby", count) for builders asked to start
    on standby; the builders never finish (their graphs never take over) and the run's end does not wait for them."""
    events = []

    class Building:
        returncode = None

        def poll(self):
            return None

        def terminate(self):
            events.append(("stopped",))

    real_submit, real_call = builders.BuildQueue.submit, compiled.CompiledCall.__call__

    def submit(queue, key, spec, store, later=False):  # two builders run at a time, the next when one is done
        events.append(("build", spec["function"], json.dumps(spec["signature"])))
        return real_submit(queue, key, spec, store, later)

    def start(build, parallel, standby=None):
        build.process = Building()

    def call(self, *args):
        events.append(("call", self.function, json.dumps([list(s) for s in compiled.signature_of(args)])))
        return real_call(self, *args)

    def start_standby(queue, count, log_path):  # none really started: the builds above never run
        events.append(("standby", count))

    monkeypatch.setattr(builders, "default_build_limit", lambda: 2)
    monkeypatch.setattr(builders.BuildQueue, "start_standby", start_standby)
    monkeypatch.setattr(builders.BuildQueue, "submit", submit)
    monkeypatch.setattr(builders.Build, "start", start)
    monkeypatch.setattr(Compiler, "wait", lambda self, timeout_s=None: True)
    monkeypatch.setattr(compiled.CompiledCall, "__call__", call)
    return events


def cold_run(make_config, manifest: Path, cache: Path, *overrides: str):
    from svd_batch.batch.runner import run

    config = make_config(
        f"manifest={manifest}", "sweep=none", "hardware=cpu", "hardware.compile_unet=full",
        "hardware.compile_vae=true", "hardware.compile_artifacts=true", "hardware.compile_backend=aot_eager",
        "hardware.compile_background=true", "hardware.cross_attention_shortcut=true",
        f"hardware.compile_cache_dir={cache}", "sample.decode_chunk_size=3", *overrides,
    )  # fmt: skip
    result = run(config)
    assert [r.status for r in result.records] == ["ok", "ok"]


def test_a_cold_run_starts_building_its_graphs_before_the_first_video_with_the_signatures_its_calls_have(
    make_config, two_images, tmp_path, build_events
):
    """The builds of the UNet and the VAE decoder start before the first video's calls, for exactly the signatures
    those calls have (VideoGenerator.graph_arguments against a real call), and no call starts another."""
    cold_run(make_config, two_images, tmp_path / "compiled")
    builds = [e[1:] for e in build_events if e[0] == "build"]
    calls = [e[1:] for e in build_events if e[0] == "call"]
    # the UNet's first; the decoder's 8 frames in chunks of 3, 3 and 2
    assert [function for function, _ in builds] == ["unet", "vae_decoder", "vae_decoder"]
    assert build_events.index(("build", *builds[-1])) < build_events.index(("call", *calls[0]))
    assert set(calls) == set(builds)  # every call's signature was built ahead; none started a build of its own
    assert build_events.count(("stopped",)) == 2  # the two builders still running; the queued one never started
    assert build_events[0] == ("standby", 2)  # before the model loaded: one for the UNet, one for a decoder


def test_a_unet_in_parts_starts_a_build_a_part_before_the_first_video(make_config, two_images, tmp_path, build_events):
    """Each part of the UNet is built by a builder of its own, for the UNet call's signature (the builder runs the
    parts before its own to get its inputs), the parts first; the whole UNet's graph is asked for too, for later."""
    cold_run(make_config, two_images, tmp_path / "compiled", "hardware.compile_unet_parts=3")
    assert build_events[0] == ("standby", 5)  # a builder for each part, the whole UNet and a decoder (2 at once)
    builds = [e[1:] for e in build_events if e[0] == "build"]
    calls = {e[1:] for e in build_events if e[0] == "call"}
    # the parts, then the whole UNet (for later videos and runs: started after the decoders), then the decoders
    assert [function for function, _ in builds] == [*unet_graph_names(3), "unet", "vae_decoder", "vae_decoder"]
    [unet_call] = [signature for function, signature in calls if function == "unet"]
    assert {signature for function, signature in builds if function.startswith("unet")} == {unet_call}
    first_call = next(i for i, e in enumerate(build_events) if e[0] == "call")
    assert build_events.index(("build", *builds[-1])) < first_call


def test_builders_start_on_standby_only_where_the_plans_unet_graphs_are_not_all_stored(built, make_config, two_images):
    from svd_batch.batch.runner import make_plan, start_builders

    settings, meta, _ = built

    def plan(cache: Path):
        config = make_config(
            f"manifest={two_images}", "sweep=none", "hardware=cpu", "hardware.compile_unet=full",
            "hardware.compile_artifacts=true", "hardware.compile_backend=aot_eager",
            "hardware.cross_attention_shortcut=true", f"hardware.compile_cache_dir={cache}",
        )  # fmt: skip
        return config, make_plan(config)

    config, stored = plan(settings.store.parent)  # the tiny UNet's graph is stored there
    assert start_builders(config, stored.hardware, stored.jobs, None) is None
    config, empty = plan(settings.store.parent / "elsewhere")
    queue = start_builders(config, empty.hardware, empty.jobs, None)
    try:
        assert len(queue.standby) == 2 and all(process.poll() is None for process in queue.standby)
        niceness = [os.getpriority(os.PRIO_PROCESS, process.pid) for process in queue.standby]
        assert niceness == [os.getpriority(os.PRIO_PROCESS, 0) + builders.BUILDER_NICENESS] * 2  # the run comes first
    finally:
        waiting = list(queue.standby)
        queue.close_standby()  # no spec: they exit
    assert [process.wait(timeout=120) for process in waiting] == [0, 0]


def test_graphs_that_cannot_be_built_ahead_start_building_at_the_first_call(
    make_config, two_images, tmp_path, build_events, monkeypatch, caplog
):
    from svd_batch.engine.pipeline import VideoGenerator

    def no_arguments(self, params):
        raise KeyError("projection_dim")

    monkeypatch.setattr(VideoGenerator, "graph_arguments", no_arguments)
    cold_run(make_config, two_images, tmp_path / "compiled")
    assert "compiled graphs not built ahead (KeyError: 'projection_dim')" in caplog.text
    first_call = next(i for i, e in enumerate(build_events) if e[0] == "call")
    assert build_events[first_call + 1][:2] == ("build", "unet")  # the first call asked for it
    assert {e[1] for e in build_events if e[0] == "build"} == {"unet", "vae_decoder"}


def test_a_changed_key_is_not_served_by_an_existing_artifact(built):
    settings, meta, _ = built
    other = Compiler(dataclasses.replace(settings, fast_paths=FastPaths()))
    call = other.call("unet", torch.nn.Module(), tiny_unet())
    key, fields = other.key(call, compiled.signature_of(inputs()))
    assert key != meta["key"] and fields["fast_paths"] == "none" and other.load(key) is None


def test_a_corrupt_artifact_is_rebuilt_not_loaded(built, tmp_path, monkeypatch):
    settings, meta, expected = built
    good = Compiler(settings).load(meta["key"])
    settings = dataclasses.replace(settings, store=tmp_path / "artifacts")
    shutil.copytree(built[0].store, settings.store)
    path = settings.store / meta["key"] / "artifact.bin"
    path.write_bytes(path.read_bytes()[: meta["size"] // 2])  # e.g. a copy cut short
    builds = []
    # the rebuild is a real store write; the trace it would repeat is the good artifact's (saves a compile here)
    monkeypatch.setattr(compiled, "compile_function", lambda *a: builds.append(a[0]) or (good, {"build_s": 1.0}))
    unet = tiny_unet()
    Compiler(settings).install_unet(unet)
    assert torch.allclose(denoise(unet), expected, atol=1e-6)
    assert builds == ["unet"] and ArtifactStore(settings.store).read(meta["key"]) is not None


def test_a_graph_that_cannot_be_compiled_ahead_of_time_is_compiled_in_process(settings, monkeypatch, caplog):
    def unserializable(*_):
        raise RuntimeError("cannot serialize this graph")

    jitted = []

    def fake_torch_compile(function, **options):  # torch.compile's own work is torch's to test
        jitted.append((function, options["fullgraph"], options["dynamic"]))
        return function

    checked = []
    monkeypatch.setattr(compiled, "compile_function", unserializable)
    monkeypatch.setattr(compiled.torch, "compile", fake_torch_compile)
    monkeypatch.setattr(compiled, "check_fused_kernels", checked.append)
    unet = tiny_unet()
    expected = denoise(unet)
    compiler = Compiler(settings)
    compiler.install_unet(unet)
    assert torch.allclose(denoise(unet), expected, atol=1e-6)
    assert "compiling unet ahead of time failed (cannot serialize this graph)" in caplog.text
    assert "compiling unet in this process instead" in caplog.text
    assert jitted == [(compiled.unet_call, True, False)]  # one whole graph, static shapes
    assert checked == [unet]  # the fused kernels were checked before compiling (a traced graph cannot check)


def test_compiling_ahead_of_time_checks_the_fused_kernels_first(settings, monkeypatch):
    order = []

    class Compiling(Exception):  # torch.compile's own work is not this test's
        pass

    def torch_compile(*_, **__):
        order.append("compiled")
        raise Compiling

    monkeypatch.setattr(compiled, "aot_compile_available", lambda: True)
    monkeypatch.setattr(compiled, "check_fused_kernels", lambda module: order.append("checked"))
    monkeypatch.setattr(compiled.torch, "compile", torch_compile)
    with pytest.raises(Compiling):
        compiled.compile_function("unet", tiny_unet(), inputs(), settings)
    assert order == ["checked", "compiled"]


def test_graphs_are_compiled_with_the_options_that_make_loading_them_cheap(settings, monkeypatch):
    """inductor leaves user-defined Triton kernels (the fused GEGLU) out of the artifact unless its static launcher
    runs them (each process that loads it compiled them again), and by default compiles a second configuration of
    some reduction kernels at every load and times both at the first call."""
    settings = dataclasses.replace(settings, backend="inductor", inductor={"coordinate_descent_tuning": True})
    seen = []

    class Compiling(Exception):  # torch.compile's own work is not this test's
        pass

    def torch_compile(function, **options):
        seen.append(options["options"])
        raise Compiling

    monkeypatch.setattr(compiled, "aot_compile_available", lambda: True)
    monkeypatch.setattr(compiled, "check_fused_kernels", lambda module: None)
    monkeypatch.setattr(compiled.torch, "compile", torch_compile)
    with pytest.raises(Compiling):
        compiled.compile_function("unet", tiny_unet(), inputs(), settings)
    with pytest.raises(Compiling):
        Compiler(settings).jit("unet", tiny_unet())  # also when compiled in this process
    for options in seen:  # the profile's options kept
        assert options["static_launch_user_defined_triton_kernels"] is True and options["coordinate_descent_tuning"]
        assert options["dynamic_scale_rblock"] is False and options["triton.autotune_pointwise"] is False
    profile_says = dataclasses.replace(settings, inductor={"dynamic_scale_rblock": True})
    assert compiled.inductor_options(profile_says)["dynamic_scale_rblock"] is True  # a profile can turn one back on

    def key(settings):
        return artifact_key("unet", compiled.key_fields(settings, "unet", {}, compiled.signature_of(inputs())))

    without = {**settings.inductor, "static_launch_user_defined_triton_kernels": False}
    assert key(settings) != key(dataclasses.replace(settings, inductor=without))  # a build without it is not loaded


def test_a_run_on_compiled_graphs_leaves_the_fused_kernels_check_to_an_eager_call(compose_cfg, settings, monkeypatch):
    from svd_batch.config import load_config
    from svd_batch.engine import unet_fast
    from svd_batch.engine.accelerator import GpuInfo
    from svd_batch.engine.hardware import resolve_hardware
    from svd_batch.engine.prepare import prepare_pipeline

    checked = []
    monkeypatch.setattr(unet_fast, "geglu_runs_here", lambda device, dtype: checked.append(device) or True)
    h100 = resolve_hardware(load_config(compose_cfg("hardware=h100")).hardware, GpuInfo("NVIDIA H100", 80.0))
    hw = dataclasses.replace(h100, device="cpu", dtype="float32")
    assert hw.fast_paths.fused_geglu
    prepare_pipeline(build_tiny_pipeline(), hw, Compiler(settings))
    assert checked == []  # the artifacts' builder checked it; this process may never run the module eagerly
    prepare_pipeline(build_tiny_pipeline(), hw, compiler=None)  # compiled here, in-process: checked at install
    assert checked == [torch.device("cpu")]


# --- background builds ----------------------------------------------------------------------------------------------


def test_background_build_renders_eagerly_until_ready_and_concurrent_builders_build_once(settings):
    """The builder is a real `python -m svd_batch.engine.compiled` process; a second builder of the same key (another
    run sharing the cache) waits for the first and finds the artifact built."""
    settings = dataclasses.replace(settings, background=True)
    unet = tiny_unet()
    expected = denoise(unet)
    queue = builders.BuildQueue(limit=2)
    queue.start_standby(1, settings.store / "standby.log")  # started before the build is asked for; it takes it
    standby = queue.standby[0]
    compiler = Compiler(settings, queue)
    compiler.install_unet(unet)
    assert torch.allclose(denoise(unet), expected, atol=1e-6)  # eager while the builder works
    [build] = compiler.waiting.values()
    assert build.process is standby and not queue.standby
    [graph] = compiler.pending
    spec = settings.store / f"{build.key}.spec.json"
    second = subprocess.run(
        [sys.executable, "-m", "svd_batch.engine.compiled", str(spec)], cwd=REPO, capture_output=True, text=True
    )
    assert compiler.wait(timeout_s=240)
    assert second.returncode == 0, second.stderr[-2000:]
    logs = build.store.log_path(build.key).read_text() + second.stdout
    assert logs.count("compiling unet") == 1 and "already built by another process" in logs
    assert "a builder on standby, ready" in logs
    assert graph.signature in graph.call.loaded  # handed over: the next video runs the compiled graph
    assert torch.allclose(denoise(unet), expected, atol=1e-6)


def test_a_cold_unet_in_parts_takes_over_part_by_part_then_whole_and_later_runs_load_it_whole(
    settings, monkeypatch, caplog
):
    """Cold: each part's builder (here run in this process, to its end, when started) remakes the UNet, runs the
    parts before its own for its inputs and stores its graph; the parts take over once all are stored, and the whole
    UNet's graph (queued after them, for later) once it is. A later run loads the whole graph and compiles nothing;
    one that finds only the parts runs them and builds the whole graph again."""
    settings = dataclasses.replace(settings, background=True)
    built, held = [], []

    class Process:
        def __init__(self, done):
            self.returncode = 0 if done else None

        def poll(self):
            return self.returncode

    def start(build, parallel, standby=None):  # the builder's own code, run now; the whole UNet's held back
        build.store.root.mkdir(parents=True, exist_ok=True)
        spec_path = build.store.root / f"{build.key}.spec.json"
        spec_path.write_text(json.dumps(build.spec))
        assert compiled.build_from_spec(spec_path) == 0
        built.append(build.spec["function"])
        build.process = Process(done=build.spec["function"] != "unet")
        if build.spec["function"] == "unet":
            held.append(build.process)

    monkeypatch.setattr(builders.Build, "start", start)
    unet = tiny_unet()
    expected = denoise(unet)
    compiler = Compiler(settings)
    compiler.install_unet(unet, parts=2)
    call = compiler.calls["unet"]
    assert torch.allclose(denoise(unet), expected, atol=1e-6)  # eager: handed over between videos only
    assert built == [*unet_graph_names(2), "unet"] and not call.loaded
    compiler.poll()  # the parts' builders are done; the whole graph's is still running
    [(signature, parts)] = call.loaded.items()
    assert parts.__name__ == "run_parts" and call.loaded_rank == {signature: 1}
    assert torch.allclose(denoise(unet), expected, atol=1e-5) and call.ran == {signature}
    held[0].returncode = 0
    compiler.poll()  # the whole graph loads on the loader thread; the parts run meanwhile
    [whole_key] = [key for key in compiler._loading if key.startswith("unet-")]
    compiler._loading[whole_key].result()
    assert call.loaded[signature] is parts
    assert compiler.wait(timeout_s=60)  # the run's end waits for the hand-over too, so the whole graph gets tuned
    assert call.loaded[signature] is not parts and call.loaded_rank == {signature: 0} and not call.ran
    with caplog.at_level(logging.INFO, logger="svd_batch.engine.compiled"):
        compiler.close()  # handed over but never run (the run ended): run once, so its kernels are tuned
    assert call.ran == {signature} and "tuned 1 compiled graph(s) for later runs" in caplog.text

    monkeypatch.setattr(compiled, "compile_function", no_compiling)
    later = Compiler(settings)
    later.install_unet(tiny_unet(), parts=2)
    assert torch.allclose(denoise(later.calls["unet"].module), expected, atol=1e-5)
    store = ArtifactStore(settings.store)
    [whole] = store.find("unet", {"shape": [2, 8, 8, 16, 16]})
    assert later.loaded_keys == [whole["key"]]  # one graph, not the parts

    store.remove(whole["key"])
    monkeypatch.undo()
    built.clear()
    monkeypatch.setattr(builders.Build, "start", lambda build, *_: built.append(build.spec["function"]))
    third = Compiler(settings)
    third.install_unet(tiny_unet(), parts=2)
    assert torch.allclose(denoise(third.calls["unet"].module), expected, atol=1e-5)
    assert third.calls["unet"].loaded_rank == {signature: 1} and built == ["unet"]  # the parts run; whole builds


def test_failed_parts_wait_for_the_whole_graph_instead_of_compiling_in_process(settings, monkeypatch, caplog):
    settings = dataclasses.replace(settings, background=True)
    processes = {}

    class Process:
        returncode = None

        def poll(self):
            return self.returncode

    def start(build, parallel, standby=None):  # nothing is built: each part's builder fails, the whole's runs on
        build.process = processes[build.spec["function"]] = Process()

    monkeypatch.setattr(builders.Build, "start", start)
    monkeypatch.setattr(Compiler, "jit", lambda *_: pytest.fail("compiled in this process"))
    compiler = Compiler(settings)
    compiler.install_unet(tiny_unet(), parts=2)
    denoise(compiler.calls["unet"].module)
    for name in unet_graph_names(2):
        processes[name].returncode = 1
    compiler.poll()
    assert not compiler.calls["unet"].loaded and "building unet_part1of2" in caplog.text  # eager until the whole
    assert [g.rank for g in compiler.pending] == [0]


def test_builders_at_once_follow_the_cpu_cores():
    assert [builders.default_build_limit(cpus) for cpus in (1, 2, 8, 12, 16, 64)] == [2, 2, 2, 3, 4, 4]


def test_ahead_of_time_compile_is_switched_on_where_torch_has_it_behind_a_flag(monkeypatch):
    """torch 2.11 (the GPU machine's) keeps `aot_compile` behind torch._dynamo.config.enable_aot_compile."""
    monkeypatch.setattr(torch._dynamo.config, "enable_aot_compile", False, raising=False)
    assert compiled.aot_compile_available()
    assert torch._dynamo.config.enable_aot_compile
