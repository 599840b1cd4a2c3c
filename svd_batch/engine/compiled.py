"""Whole-graph compiled UNet and VAE decoder, made once and reused by every later process.

torch.compile traces and compiles the model again in every new process (minutes with a cold cache, ~30 s from
inductor's cache). Here each graph is compiled with torch's ahead-of-time `aot_compile` for one input signature,
serialized, and stored (svd_batch.engine.artifacts): a later process loads it in seconds, without tracing.

A missing artifact is built by a separate process (`python -m svd_batch.engine.compiled SPEC.json`) that remakes
the module's structure from its config (weights do not matter to the compiled code) while this process renders its
first videos eagerly; the run switches to the compiled graph at the next video once the artifact exists. With
`compile_background=false` the first call waits for the build instead. The compiled functions take the module as
their first argument, so the artifact reads this process's own weights.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import sys
import time
import types
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
from diffusers.models.autoencoders.autoencoder_kl_temporal_decoder import TemporalDecoder
from diffusers.models.unets.unet_spatio_temporal_condition import UNetSpatioTemporalConditionOutput

from svd_batch.config import AttentionBackend, SvdBatchError
from svd_batch.engine import accelerator, step_cache, unet_parts
from svd_batch.engine.artifacts import (
    ArtifactStore,
    artifact_key,
    attention_fields,
    environment_fields,
    unet_graph_choices,
)
from svd_batch.engine.builders import STANDBY_FLAG, Build, BuildQueue
from svd_batch.engine.hardware import FastPaths
from svd_batch.engine.models import default_dtype
from svd_batch.engine.unet_fast import check_fused_kernels, install, install_decoder

log = logging.getLogger(__name__)


def unet_call(unet, sample, timestep, encoder_hidden_states, added_time_ids) -> torch.Tensor:
    """One denoising call of the UNet (the class's forward: an installed dispatcher must not call itself)."""
    return UNetSpatioTemporalConditionModel.forward(
        unet, sample, timestep, encoder_hidden_states, added_time_ids, return_dict=False
    )[0]


def decoder_call(decoder, sample, image_only_indicator, num_frames) -> torch.Tensor:
    return TemporalDecoder.forward(decoder, sample, image_only_indicator=image_only_indicator, num_frames=num_frames)


# what can be compiled; each takes its module first and is found by name in the builder process
FUNCTIONS: dict[str, tuple[str, Callable]] = {
    "unet": ("unet", unet_call),
    "unet_full_step": ("unet", step_cache.full_step),
    "unet_shallow_step": ("unet", step_cache.shallow_step),
    "vae_decoder": ("vae", decoder_call),
}
# and the UNet's forward in consecutive parts (svd_batch.engine.unet_parts): unet_part1of3, ...


def module_kind(function: str) -> str:
    """Which module `function` takes first: "unet" or "vae"."""
    return "unet" if unet_parts.parse_part_name(function) else FUNCTIONS[function][0]


def function_of(function: str, module: torch.nn.Module) -> Callable:
    """The Python function named `function`, for `module`'s structure (a UNet part's stages depend on it)."""
    part = unet_parts.parse_part_name(function)
    return unet_parts.part_function(module, *part) if part else FUNCTIONS[function][1]


class CompileError(SvdBatchError):
    pass


def aot_compile_available() -> bool:
    """torch 2.10-2.11 have ahead-of-time compile behind a flag; 2.12 on enable it by default."""
    if hasattr(torch._dynamo.config, "enable_aot_compile"):
        torch._dynamo.config.enable_aot_compile = True
    return hasattr(torch.compile(lambda: None, fullgraph=True), "aot_compile")


@dataclass(frozen=True)
class CompileSettings:
    """Everything about compiling that one run shares, and that the builder process needs too."""

    store: Path  # the artifact store's root
    inductor_cache: Path  # TORCHINDUCTOR_CACHE_DIR for builds
    model: str  # model identity (svd_batch.batch.plan.model_identity)
    device: str  # where the module runs: cuda, cuda:N, cpu
    device_name: str  # GPU name (or "cpu"): the generated kernels are specific to it
    dtype: str
    fast_paths: FastPaths = field(default_factory=FastPaths)
    backend: str = "inductor"
    inductor: dict[str, Any] = field(default_factory=dict)
    background: bool = True


# inductor options of svd-batch's own that make loading an artifact cheaper; the profile's `inductor` options win
LOAD_FRIENDLY_INDUCTOR_OPTIONS = {
    # User-defined Triton kernels (the fused GEGLU) launched by inductor's static launcher, like its own kernels
    # (torch >= 2.8): the artifact then holds them ready to launch. Otherwise each process that loads the artifact
    # compiles them again at its three widths (~1.4 s each in the first process after a build, ~0.4 s each later;
    # H200 `h200-2026-12-02d` calls 3-5).
    "static_launch_user_defined_triton_kernels": True,
    # No second configuration with half the reduction block for the layer norms' reduction kernels: inductor
    # compiles it in every process that loads the artifact and times both at the first call (0.6 s of loading and
    # ~0.5 s of the first step in the warm start's profiles); the norms take ~0.1 ms a call.
    "dynamic_scale_rblock": False,
    # Pointwise kernels launched with inductor's heuristic configuration instead of the best of 2 (1-D) or 6 (2-D)
    # timed on the GPU at their first run: the first compiled video of a cold start paid 26.7 s of such timing (UNet
    # and VAE decoders); without it the warm-up video took 20.3 s instead of 39.3 s, and the steady video 10.50 s
    # against 10.55 s, frames within 1 level of each other (H200, `h200-2026-12-02g` calls 4 and 7).
    "triton.autotune_pointwise": False,
}


def inductor_options(settings: CompileSettings) -> dict[str, Any]:
    """The inductor options a graph is compiled with: LOAD_FRIENDLY_INDUCTOR_OPTIONS that this torch has, then the
    profile's own."""
    from torch._inductor import config

    options = {name: value for name, value in LOAD_FRIENDLY_INDUCTOR_OPTIONS.items() if _has_option(config, name)}
    return {**options, **settings.inductor}


def _has_option(config, name: str) -> bool:
    """Whether inductor's config has `name` ("triton.autotune_pointwise": its `triton` section's option)."""
    section, _, option = name.rpartition(".")
    return hasattr(getattr(config, section, None) if section else config, option)


def signature_of(args: tuple) -> tuple:
    """What a compiled graph is specialized to: shape, dtype and device of each tensor, and other values."""
    return tuple(
        ("tensor", tuple(a.shape), str(a.dtype).removeprefix("torch."), a.device.type)
        if isinstance(a, torch.Tensor)
        else ("value", repr(a))
        for a in args
    )


def key_fields(settings: CompileSettings, function: str, module_config: dict, signature: tuple) -> dict[str, Any]:
    fields = {
        "model": settings.model,
        "dtype": settings.dtype,
        "fast_paths": settings.fast_paths.tag() if module_kind(function) == "unet" else settings.fast_paths.vae_tag(),
        "backend": settings.backend,
        "inductor": json.dumps(inductor_options(settings), sort_keys=True),
        "module_config": json.dumps(module_config, sort_keys=True, default=str),
        "signature": json.dumps(signature),
        **environment_fields(settings.device_name),
    }
    if module_kind(function) == "unet":
        fields.update(attention_fields(settings.fast_paths))
    if signature and signature[0][0] == "tensor":
        fields["shape"] = list(signature[0][1])  # the main input's shape, for lookups by shape (hardware=auto)
    return fields


def _config_of(module) -> dict:
    """The constructor arguments (diffusers' private entries, like the folder it came from, are left out)."""
    return {k: v for k, v in module.config.items() if not k.startswith("_")}


class Compiler:
    """One run's compiled graphs: loads artifacts, starts builders for missing ones, and hands each installed call
    its compiled function once it exists (`poll`, between videos). A graph that cannot be built or loaded ahead of
    time is compiled in this process instead, as plain torch.compile would."""

    def __init__(self, settings: CompileSettings, queue: BuildQueue | None = None):
        self.settings = settings
        self.store = ArtifactStore(settings.store)
        self.queue = queue or BuildQueue()
        self.waiting: dict[str, Build] = {}  # the background builds not handed over yet, by key
        self.pending: list[PendingGraph] = []  # the calls' graphs that wait for them
        self.loaded_keys: list[str] = []
        self.calls: dict[str, CompiledCall] = {}  # installed, by function
        self._jit: dict[str, Callable] = {}
        self._loader: ThreadPoolExecutor | None = None  # every artifact loads on this one thread, one at a time
        self._loading: dict[str, Future] = {}  # prefetched artifacts by key, loaded or loading

    # --- installing ---------------------------------------------------------------------------------------------

    def call(
        self,
        function: str,
        module: torch.nn.Module,
        config_source: Any,
        graphs: tuple[tuple[str, ...], ...] | None = None,
    ) -> CompiledCall:
        """`function(module, ...)` through its compiled graph. `graphs`: the ways to compile it, the preferred first,
        each as the functions whose graphs run one after the other (the UNet: whole, or in parts); by default
        `function`'s own graph."""
        call = CompiledCall(self, function, module, _config_of(config_source), graphs)
        self.calls[function] = call
        return call

    def install_unet(self, unet: torch.nn.Module, parts: int = 1) -> None:
        """`unet(...)` dispatches to the compiled graph for its input signature, or runs eagerly until it exists.
        With `parts` > 1, a cold start builds the forward as that many consecutive graphs at once (one builder
        each: svd_batch.engine.unet_parts), which take over first, and the whole graph after them, which takes
        over once built and is what later runs load (one graph loads and first-runs faster than its parts)."""
        graphs = tuple(tuple(functions) for functions in unet_graph_choices(parts))
        call = self.call("unet", unet, unet, graphs)

        def forward(self_, sample, timestep, encoder_hidden_states, added_time_ids, return_dict: bool = True):
            out = call(sample, timestep, encoder_hidden_states, added_time_ids)
            return (out,) if not return_dict else UNetSpatioTemporalConditionOutput(sample=out)

        unet.forward = types.MethodType(forward, unet)

    def install_vae_decoder(self, vae: torch.nn.Module) -> None:
        call = self.call("vae_decoder", vae.decoder, vae)

        def forward(self_, sample, image_only_indicator, num_frames: int = 1):
            return call(sample, image_only_indicator, num_frames)

        vae.decoder.forward = types.MethodType(forward, vae.decoder)

    # --- finding or building artifacts ---------------------------------------------------------------------------

    def request(self, call: CompiledCall, signature: tuple, args: tuple) -> Callable | None:
        """The compiled function for this call and signature: the preferred graph where its artifacts are stored,
        else another that is (the preferred one then builds in the background and takes over once built). Without
        any: built here (compile_background=false: the preferred one), or in the background (the quickest to build
        first, then the preferred one), returning None meanwhile (the call runs eagerly)."""
        if not self.settings.background:
            functions = call.graphs[0]
            compiled = {}
            for function, (key, fields) in self._graph_keys(call, signature, functions).items():
                loaded = self.load(key)
                compiled[function] = self.build_here(call, function, key, fields, args) if loaded is None else loaded
            call.loaded_rank[signature] = 0
            return call.assemble(functions, compiled)
        for rank, stored in enumerate(self._ways_stored(call, signature)):
            if not stored:
                continue
            keys = self._graph_keys(call, signature, call.graphs[rank])
            compiled = {function: self.load(key) for function, (key, _) in keys.items()}
            if any(graph is None for graph in compiled.values()):
                continue  # an artifact that did not load was removed: it builds again
            if rank > 0:
                self._queue_graph(call, signature, 0, later=True)
            call.loaded_rank[signature] = rank
            return call.assemble(call.graphs[rank], compiled)
        self._queue_builds(call, signature)
        return None

    def build_ahead(self, function: str, args: tuple) -> bool:
        """Starts building `function`'s graphs for `args` now, as the first call with them would (the calls a video
        will make: svd_batch.engine.pipeline.VideoGenerator.graph_arguments), where builds run in the background and
        the preferred graph is not stored: the builds start with the run instead of at the first video's call, which
        came 28 s (UNet) and 47 s (VAE decoder) after a cold command's start on the H200 (`h200-2026-12-02f`).
        Returns whether it started any."""
        call = self.calls.get(function)
        if call is None or not self.settings.background:
            return False
        signature = signature_of(args)
        if signature in call.requested:
            return False
        stored = self._ways_stored(call, signature)
        if stored[0]:
            return False  # loaded at the first call (one that does not load is built again then)
        if any(stored):  # the first call loads it; the preferred graph builds for later videos and runs
            return self._queue_graph(call, signature, 0, later=True)
        call.requested.add(signature)
        self._queue_builds(call, signature)
        return True

    def _queue_builds(self, call: CompiledCall, signature: tuple) -> None:
        """Nothing stored: the quickest graph to build (the last way), then the preferred one (the first)."""
        self._queue_graph(call, signature, len(call.graphs) - 1)
        if len(call.graphs) > 1:
            self._queue_graph(call, signature, 0, later=True)

    def _queue_graph(self, call: CompiledCall, signature: tuple, rank: int, later: bool = False) -> bool:
        """Queues the background builds of the missing artifacts of `call`'s graph `rank` for `signature` (each key
        once, for any number of callers); `poll` hands the graph over once they are all done. Returns whether it
        queued any."""
        if any(g.call is call and g.signature == signature and g.rank == rank for g in self.pending):
            return False
        keys = self._graph_keys(call, signature, call.graphs[rank])
        for function, (key, fields) in keys.items():
            if key in self.waiting or self.store.meta(key) is not None:
                continue
            spec = {
                "key": key,
                "function": function,
                "fields": fields,
                "module_config": call.module_config,
                "signature": [list(s) for s in signature],
                "settings": _settings_to_json(self.settings),
            }
            self.waiting[key] = self.queue.submit(key, spec, self.store, later=later)
            log.info(
                "compiling %s for %s in the background; %s (log: %s)",
                function,
                _describe_signature(signature),
                "it takes over once built, and later runs load it"
                if later
                else "videos render eagerly until it is ready",
                self.store.log_path(key),
            )
        self.pending.append(PendingGraph(call, signature, rank, {f: key for f, (key, _) in keys.items()}))
        return True

    def _graph_keys(self, call: CompiledCall, signature: tuple, functions: tuple[str, ...]) -> dict[str, tuple]:
        return {function: self.key(call, signature, function) for function in functions}

    def _ways_stored(self, call: CompiledCall, signature: tuple) -> list[bool]:
        """For each of the call's ways to compile it, whether all its artifacts are stored (or loading)."""
        return [
            all(key in self._loading or self.store.meta(key) is not None for key, _ in keys.values())
            for keys in (self._graph_keys(call, signature, functions) for functions in call.graphs)
        ]

    def key(self, call: CompiledCall, signature: tuple, function: str | None = None) -> tuple[str, dict[str, Any]]:
        """The artifact key of `function` (by default the call's own; or one of its parts) for the call's
        `signature`."""
        function = function or call.function
        fields = key_fields(self.settings, function, call.module_config, signature)
        return artifact_key(function, fields), fields

    def prefetch(self, shapes: dict[str, set[tuple[int, ...]]]) -> list[str]:
        """Starts loading the stored artifacts of the installed calls whose main input has one of `shapes` (the
        plan's: svd_batch.batch.plan.compiled_graph_shapes), the UNet's first, on the loader thread: the first video
        then finds them loaded, or waits only for the rest of a load under way, instead of loading each at its first
        call (UNet 1.6-2.0 s, decoders 0.2-0.5 s each on the H200, while the main thread encodes the image or waits
        for the GPU). Returns the keys."""
        started = []
        for call in self.calls.values():
            kind = "unet" if module_kind(call.function) == "unet" else call.function  # the UNet's graphs: its input
            for shape in sorted(shapes.get(kind, ())):
                for functions in call.graphs:  # the preferred way that is stored
                    found = [self.store.find(f, {**self._lookup(call, f), "shape": list(shape)}) for f in functions]
                    if all(found):
                        for meta in (meta for metas in found for meta in metas):
                            if meta["key"] not in self._loading:
                                self._loading[meta["key"]] = self._load_on_loader(meta["key"])
                                started.append(meta["key"])
                        break
        return started

    def _lookup(self, call: CompiledCall, function: str) -> dict[str, Any]:
        fields = key_fields(self.settings, function, call.module_config, ())
        del fields["signature"]  # found by shape: the rest of the signature is the call's to check, by key
        return fields

    def load(self, key: str) -> Callable | None:
        """The artifact's compiled function, or None where it is missing or does not load (then removed, to be
        built again). A prefetched artifact is awaited, not loaded again."""
        loading = self._loading.pop(key, None) or self._load_on_loader(key)
        compiled = loading.result()
        if compiled is not None:
            self.loaded_keys.append(key)
        return compiled

    def _load_on_loader(self, key: str) -> Future:
        if self._loader is None:
            device = torch.device(self.settings.device)
            self._loader = ThreadPoolExecutor(
                1,
                thread_name_prefix="artifact-load",
                # the generated code loads its kernels for the thread's current device: the run's own
                initializer=torch.cuda.set_device if device.type == "cuda" and device.index is not None else None,
                initargs=(device,),
            )
        return self._loader.submit(self._load_now, key)

    def _load_now(self, key: str) -> Callable | None:
        from torch._inductor import config

        data = self.store.read(key)
        if data is None:
            return None
        started = time.perf_counter()
        try:
            # no pool of compile workers for a load: inductor starts one (a process importing torch) at the first
            # kernel of a loaded graph even when every kernel comes ready to launch, and stops it at the exit (0.87 s
            # of a warm run's end on the H200, `h200-2026-12-02c`)
            with without_reserializable_copies(), config.patch(compile_threads=1):
                compiled = torch.compiler.load_compiled_function(io.BytesIO(data))
        except Exception as exc:  # an artifact from another environment that the key did not capture
            log.warning("compiled artifact %s does not load (%s): removing it, it will be built again", key, exc)
            self.store.remove(key)
            return None
        log.info("loaded compiled %s in %.1f s", key, time.perf_counter() - started)
        return compiled

    def build_here(
        self, call: CompiledCall, function: str, key: str, fields: dict[str, Any], call_args: tuple
    ) -> Callable:
        """Compiles `function` (the call's own or one of its parts) in this process for the call's arguments."""
        with self.store.building(key):
            loaded = self.load(key)  # another process may have built it while this one waited
            if loaded is not None:
                return loaded
            log.info("compiling %s for %s (compile_background=false: this video waits)", function, key)
            try:
                args = function_inputs(function, call.module, call_args)
                compiled, meta = compile_function(function, call.module, args, self.settings)
            except Exception as exc:
                log.warning("compiling %s ahead of time failed (%s)", function, exc)
                return self.jit(function, call.module)
            self.store.write(key, serialize(compiled), {**meta, "function": function, **fields})
        self.loaded_keys.append(key)
        return compiled

    def jit(self, function: str, module: torch.nn.Module) -> Callable:
        """Plain torch.compile of `function` (called with `module`), for graphs without an artifact: compiled again
        in every process."""
        check_fused_kernels(module)
        if function not in self._jit:
            log.warning("compiling %s in this process instead (later runs will try the artifact again)", function)
            options = inductor_options(self.settings) if self.settings.backend == "inductor" else None
            self._jit[function] = torch.compile(
                function_of(function, module),
                fullgraph=True,
                dynamic=False,
                backend=self.settings.backend,
                options=options,
            )
        return self._jit[function]

    # --- background builds ---------------------------------------------------------------------------------------

    def poll(self) -> None:
        """Hands each graph whose builds are all done to its call (called between videos, so no video mixes eager
        and compiled), unless the call already runs a graph it prefers."""
        for key in [key for key, build in self.waiting.items() if build.done]:
            del self.waiting[key]
        ready = [g for g in self.pending if not any(key in self.waiting for key in g.keys.values())]
        for graph in sorted(ready, key=lambda g: g.rank):  # a preferred graph first: the others are not loaded then
            call, signature = graph.call, graph.signature
            running = call.loaded_rank.get(signature)
            if running is not None and running <= graph.rank:
                self.pending.remove(graph)
                continue
            if running is not None and not self._loaded_ahead(graph.keys.values()):
                continue  # a better graph for a call that runs one already: handed over once loaded, not waited for
            self.pending.remove(graph)
            compiled = {function: self.load(key) for function, key in graph.keys.items()}
            failed = [function for function, loaded in compiled.items() if loaded is None]
            preferred_coming = any(g.call is call and g.signature == signature for g in self.pending)
            if failed and (running is not None or preferred_coming):  # keep what runs, or wait for the other
                for function in failed:
                    self._log_failure(graph.keys[function])
                continue
            for function in failed:
                self._log_failure(graph.keys[function])
                compiled[function] = self.jit(function, call.module)
            parts = f" ({len(compiled)} parts)" if len(compiled) > 1 else ""
            log.info("compiled %s%s is ready (asked for %.0f s ago)", call.function, parts, time.time() - graph.asked)
            call.loaded[signature] = call.assemble(call.graphs[graph.rank], compiled)
            call.loaded_rank[signature] = graph.rank
            call.ran.discard(signature)  # a new graph: its first run tunes its kernels
        self.queue.start_ready()

    def tune_unused(self) -> None:
        """Runs once each graph handed over that no call ran (its builds ended with the run). A compiled graph's
        first run picks each kernel's launch configuration, timing the candidates on the GPU, and inductor keeps the
        choice in its cache: the next run's first video then runs at full speed. The builders do not do it: four of
        them timing kernels at once beside the run's eager video slowed that video from 13.6 to 32.7 s
        (benchmarks/h200-2026-12-02g); the run does it at its first compiled call, alone on the GPU."""
        untuned = [
            (call, signature, graph)
            for call in self.calls.values()
            for signature, graph in call.loaded.items()
            if signature not in call.ran
        ]
        if not untuned:
            return
        started = time.perf_counter()
        with torch.no_grad():
            for call, signature, graph in untuned:
                graph(call.module, *example_args(signature, self.settings.device))
                call.ran.add(signature)
        accelerator.synchronize(torch.device(self.settings.device))
        log.info("tuned %d compiled graph(s) for later runs in %.1f s", len(untuned), time.perf_counter() - started)

    def _loaded_ahead(self, keys) -> bool:
        """Starts loading `keys` on the loader thread (where not under way); whether all are loaded."""
        for key in keys:
            if key not in self._loading:
                self._loading[key] = self._load_on_loader(key)
        return all(self._loading[key].done() for key in keys)

    def _log_failure(self, key: str) -> None:
        build = self.queue.builds.get(key)
        log.warning(
            "building %s failed (exit %s). Last lines of %s:\n%s",
            key,
            build.process.returncode if build and build.process else None,
            self.store.log_path(key),
            _tail(self.store.log_path(key)),
        )

    def used_artifacts(self) -> list[dict[str, Any]]:
        """Metadata of the artifacts this run loaded."""
        return [meta for key in dict.fromkeys(self.loaded_keys) if (meta := self.store.meta(key))]

    def wait(self, timeout_s: float | None = None) -> bool:
        """Waits for every build this run started and for its graph's hand-over (a better graph loads on the loader
        thread first); True when none is left."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.waiting or self.pending:
            self.poll()
            if not (self.waiting or self.pending) or (deadline is not None and time.monotonic() > deadline):
                break
            time.sleep(0.5)
        return not (self.waiting or self.pending)

    def close(self, wait: bool = True) -> None:
        """Lets running builds finish and tunes them (the next run loads them ready), or stops them."""
        if (self.waiting or self.pending) and wait:
            log.info("finishing %d compiled graph(s) for later runs...", len(self.waiting))
            self.wait()
        if wait:
            self.tune_unused()
        self.queue.cancel(self.waiting.values())
        self.queue.close_standby()
        self.waiting.clear()
        self.pending.clear()
        if self._loader is not None:  # a load under way finishes; one not started is dropped
            self._loader.shutdown(wait=True, cancel_futures=True)
            self._loader, self._loading = None, {}


@contextlib.contextmanager
def without_reserializable_copies():
    """While loading an artifact: torch deep-copies each graph's cache entry so that the loaded function could be
    serialized again (torch._functorch._aot_autograd.aot_autograd_result.deserialize_bundled_cache_entry in torch
    2.11 and 2.13): the UNet's load on the H200 went 2.4-2.7 -> 1.6-1.7 s without it. A loaded artifact is never
    serialized again here, so within this block copy.deepcopy returns such an entry itself; every other object is
    copied as before. Where torch has no such entry type, nothing changes."""
    try:
        from torch._functorch._aot_autograd.aot_autograd_result import BundledAOTAutogradResult
    except ImportError:
        yield
        return
    original = copy.deepcopy

    def deepcopy(value, memo=None, _nil=None):
        return value if isinstance(value, BundledAOTAutogradResult) else original(value, memo)

    copy.deepcopy = deepcopy
    try:
        yield
    finally:
        copy.deepcopy = original


@dataclass(eq=False)
class PendingGraph:
    """A call's compiled graph (one of its ways, `rank` in `call.graphs`) for one signature that waits for
    background builds of its artifacts."""

    call: CompiledCall
    signature: tuple
    rank: int
    keys: dict[str, str]  # each function's artifact key
    asked: float = field(default_factory=time.time)


class CompiledCall:
    """`function(module, *args)`, through the compiled graph of the args' signature once it is loaded: one of
    `graphs`, the ways to compile it (the UNet: whole, or in consecutive parts run one after the other)."""

    def __init__(
        self,
        compiler: Compiler,
        function: str,
        module: torch.nn.Module,
        module_config: dict,
        graphs: tuple[tuple[str, ...], ...] | None = None,
    ):
        self.compiler = compiler
        self.function = function
        self.graphs = graphs or ((function,),)
        self.eager = FUNCTIONS[function][1]
        self.module = module
        self.module_config = module_config
        self.loaded: dict[tuple, Callable] = {}
        self.loaded_rank: dict[tuple, int] = {}  # which of `graphs` each loaded one is
        self.requested: set[tuple] = set()
        self.ran: set[tuple] = set()  # signatures whose loaded graph has run (its kernels tuned)

    @staticmethod
    def assemble(functions: tuple[str, ...], compiled: dict[str, Callable]) -> Callable:
        """One function of (module, *args) from the compiled `functions`, each one's outputs the next one's inputs."""
        *earlier, last = (compiled[function] for function in functions)
        if not earlier:
            return last

        def run_parts(module, *args):
            for part in earlier:
                args = part(module, *args)
            return last(module, *args)

        return run_parts

    def __call__(self, *args):
        signature = signature_of(args)
        compiled = self.loaded.get(signature)
        if compiled is None and signature not in self.requested:
            self.requested.add(signature)
            compiled = self.compiler.request(self, signature, args)
            if compiled is not None:
                self.loaded[signature] = compiled
        if compiled is None:
            return self.eager(self.module, *args)
        self.ran.add(signature)
        return compiled(self.module, *args)


def _describe_signature(signature: tuple) -> str:
    first = signature[0]
    return "x".join(map(str, first[1])) if first[0] == "tensor" else repr(first)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _settings_to_json(settings: CompileSettings) -> dict[str, Any]:
    plain = asdict(settings)
    plain["store"], plain["inductor_cache"] = str(settings.store), str(settings.inductor_cache)
    plain["fast_paths"] = {
        k: (v.value if isinstance(v, AttentionBackend) else v) for k, v in plain["fast_paths"].items()
    }
    return plain


def _settings_from_json(plain: dict[str, Any]) -> CompileSettings:
    backends = {f.name for f in dataclass_fields(FastPaths) if isinstance(f.default, AttentionBackend)}
    fast = FastPaths(**{k: AttentionBackend(v) if k in backends else v for k, v in plain["fast_paths"].items()})
    return CompileSettings(
        **{**plain, "store": Path(plain["store"]), "inductor_cache": Path(plain["inductor_cache"]), "fast_paths": fast}
    )


# --- compiling (here or in the builder process) ------------------------------------------------------------------


def function_inputs(function: str, module: torch.nn.Module, call_args: tuple) -> tuple:
    """What `function` is called with where its call is called with `call_args`: a UNet part's inputs come from the
    parts before it (run here eagerly); any other function takes the call's own."""
    part = unet_parts.parse_part_name(function)
    return unet_parts.inputs_of_part(module, *part, *call_args) if part else call_args


def compile_function(function: str, module: torch.nn.Module, args: tuple, settings: CompileSettings):
    """aot_compile `function(module, *args)` as one graph; returns it and the build's metadata."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(settings.inductor_cache))
    if not aot_compile_available():
        raise CompileError(f"torch {torch.__version__} cannot compile ahead of time")
    # keep only the input tensors' guards: parameters are read from the module passed at call time, and the caller
    # dispatches by signature; the other guards (module identity, globals) cannot be serialized
    options = inductor_options(settings) if settings.backend == "inductor" else {}
    options = {**options, "guard_filter_fn": torch.compiler.keep_tensor_guards_unsafe}
    check_fused_kernels(module)
    started = time.perf_counter()
    compiled_fn = torch.compile(
        function_of(function, module), fullgraph=True, dynamic=False, backend=settings.backend, options=options
    )
    with torch.no_grad():
        compiled = compiled_fn.aot_compile(((module, *args), {}))
    return compiled, {"build_s": round(time.perf_counter() - started, 1), "created": time.strftime("%FT%T%z")}


def serialize(compiled) -> bytes:
    return type(compiled).serialize(compiled).serialized_data


def remake_module(kind: str, config: dict, settings: CompileSettings) -> torch.nn.Module:
    """The module's structure from its config, weights left uninitialised (compiled code does not depend on them),
    on the device and in the dtype the run uses, with the same fast paths installed."""
    model_class = UNetSpatioTemporalConditionModel if kind == "unet" else AutoencoderKLTemporalDecoder
    with torch.device("meta"), default_dtype(getattr(torch, settings.dtype)):
        model = model_class.from_config(config)
    model = model.to_empty(device=settings.device).eval()
    if kind == "unet":
        install(model, settings.fast_paths)
        return model
    install_decoder(model.decoder, settings.fast_paths)
    return model.decoder


def example_args(signature: list, device: str) -> tuple:
    args = []
    for entry in signature:
        if entry[0] == "tensor":
            _, shape, dtype, _ = entry
            args.append(torch.randn(shape, dtype=getattr(torch, dtype), device=device))
        else:
            import ast

            args.append(ast.literal_eval(entry[1]))
    return tuple(args)


def build_from_spec(spec_path: Path) -> int:
    """The builder process: compiles one artifact described by a spec file and stores it."""
    spec = json.loads(spec_path.read_text())
    settings = _settings_from_json(spec["settings"])
    store = ArtifactStore(settings.store)
    key, function = spec["key"], spec["function"]
    started = spec.get("started", time.time())  # when the run started this process

    def note(message: str) -> None:  # where a build's time goes, beside compiling itself
        print(f"{key}: {message} [{time.time() - started:.1f} s]", flush=True)

    note("imports done")
    with store.building(key):
        if store.read(key) is not None:
            note("already built by another process")
            return 0
        module = remake_module(module_kind(function), spec["module_config"], settings)
        args = function_inputs(function, module, example_args(spec["signature"], settings.device))
        note(f"compiling {function} for {spec['fields'].get('shape')}")
        compiled, meta = compile_function(function, module, args, settings)
        note(f"compiled in {meta['build_s']} s")
        # not run here: its first run tunes its kernels on the GPU, which the run does alone (Compiler.tune_unused)
        meta = store.write(key, serialize(compiled), {**meta, "function": function, **spec["fields"]})
        note(f"stored {meta['size'] / 2**20:.1f} MiB after {meta['build_s']} s compiling")
    return 0


def standby() -> int:
    """A builder started before its graph is known (svd_batch.engine.builders): with its imports done, it waits for
    a spec's path on stdin and builds it, writing to that build's log; without one (the run ended), it exits."""
    ready = time.time()
    if torch.cuda.is_available():
        torch.cuda.init()
    line = sys.stdin.readline().strip()
    if not line:
        return 0
    spec_path = Path(line)
    spec = json.loads(spec_path.read_text())
    log_path = ArtifactStore(Path(spec["settings"]["store"])).log_path(spec["key"])
    sys.stdout.flush()
    sys.stderr.flush()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    print(f"{spec['key']}: a builder on standby, ready {spec['started'] - ready:.1f} s before its spec", flush=True)
    return build_from_spec(spec_path)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sys.exit(standby() if sys.argv[1] == STANDBY_FLAG else build_from_spec(Path(sys.argv[1])))
