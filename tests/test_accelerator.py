"""Any accelerator: the one module that talks to it, against fake backends for each kind (no NPU, XPU or Mac here);
profiles per kind; out-of-memory classified by stage and answered by the fallback that can help it."""

from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from svd_batch.batch import runner, worker
from svd_batch.config import CompileScope, ConfigError, Placement, SampleParams, load_config
from svd_batch.engine import accelerator
from svd_batch.engine.accelerator import GIB, GpuInfo
from svd_batch.engine.hardware import Hardware, resolve_hardware
from svd_batch.engine.models import build_tiny_pipeline
from svd_batch.engine.pipeline import Generation, StageOutOfMemory, StageTimes, VideoGenerator


class FakeBackend(types.SimpleNamespace):
    """What torch.cuda / torch.npu / torch.xpu offer, recording the calls made on it."""

    def __init__(self, name="Fake 910B", total_gib=64.0, free_gib=60.0):
        super().__init__(calls=[], name=name, total=int(total_gib * GIB), free=int(free_gib * GIB), peak=3 * GIB)

    def is_available(self):
        return True

    def get_device_name(self, index):
        self.calls.append(("name", index))
        return self.name

    def mem_get_info(self, index):
        self.calls.append(("mem_get_info", index))
        return self.free, self.total

    def synchronize(self):
        self.calls.append("synchronize")

    def reset_peak_memory_stats(self, device):
        self.calls.append("reset_peak")

    def max_memory_allocated(self, device):
        return self.peak

    def empty_cache(self):
        self.calls.append("empty_cache")


@pytest.fixture
def fake(monkeypatch):
    """Installs a fake backend as torch.<kind> (and torch_npu for npu); torch.accelerator is hidden so the backend's
    own module is used, as on a torch without it."""

    def install(kind: str, **kwargs) -> FakeBackend:
        backend = FakeBackend(**kwargs)
        monkeypatch.setattr(torch, kind, backend, raising=False)
        if kind == "npu":
            monkeypatch.setitem(sys.modules, "torch_npu", types.ModuleType("torch_npu"))
        monkeypatch.setattr(accelerator, "_has_accelerator_api", lambda name: False)
        return backend

    return install


def hardware_of(compose_cfg, profile: str, *overrides: str):
    return load_config(compose_cfg("output_dir=/tmp/x", f"hardware={profile}", *overrides)).hardware


@pytest.mark.parametrize("kind", ["cuda", "npu", "xpu"])
def test_each_kind_is_detected_and_measured_through_its_backend(fake, kind):
    backend = fake(kind, name=f"fake {kind}", total_gib=32.0, free_gib=20.0)
    info = accelerator.detect_gpu(f"{kind}:1")
    assert info == GpuInfo(f"fake {kind}", 32.0, 20.0, kind=kind)
    assert ("mem_get_info", 1) in backend.calls and ("name", 1) in backend.calls
    device = types.SimpleNamespace(type=kind)
    accelerator.synchronize(device)
    accelerator.reset_peak_memory(device)
    assert accelerator.peak_memory_gib(device) == 3.0
    accelerator.empty_cache(f"{kind}:1")
    assert backend.calls[-3:] == ["synchronize", "reset_peak", "empty_cache"]


def test_auto_finds_the_accelerator_torch_sees_and_mps_reports_unified_memory(fake, monkeypatch):
    mps = FakeBackend()
    mps.recommended_max_memory = lambda: 24 * GIB
    mps.driver_allocated_memory = lambda: 4 * GIB
    monkeypatch.setattr(torch, "mps", mps)
    monkeypatch.setattr(accelerator, "current_kind", lambda: "mps")
    info = accelerator.detect_gpu("auto")
    assert (info.kind, info.name, info.total_gib, info.free_gib) == ("mps", "Apple MPS", 24.0, 20.0)
    monkeypatch.setattr(accelerator, "current_kind", lambda: None)
    assert accelerator.detect_gpu("auto") is None and accelerator.detect_gpu("cpu") is None


def test_torch_accelerator_is_used_where_torch_has_it(monkeypatch):
    seen = []
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda device=None: seen.append(device))
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda check_available=False: torch.device("xpu"))
    accelerator.synchronize(torch.device("xpu"))
    assert seen == [torch.device("xpu")] and accelerator.current_kind() == "xpu"
    accelerator.synchronize(torch.device("cpu"))  # the CPU has nothing queued
    assert len(seen) == 1


def test_npu_without_torch_npu_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_npu", None)  # import fails
    with pytest.raises(ConfigError, match="needs Huawei's torch_npu package.*pip install torch-npu"):
        accelerator.detect_gpu("npu")


def test_out_of_memory_is_recognised_from_every_backend():
    assert accelerator.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert accelerator.is_out_of_memory(RuntimeError("NPU out of memory. Tried to allocate 1.00 GiB"))
    assert accelerator.is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 17 GB)"))
    assert accelerator.is_out_of_memory(RuntimeError("XPU out of memory. Tried to allocate 512 MiB"))
    assert not accelerator.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not accelerator.is_out_of_memory(ValueError("out of memory"))


# --- profiles per kind ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "profile,info,placement,chunking",
    [
        ("npu", GpuInfo("Ascend910B", 64.0, 60.0, kind="npu"), Placement.resident, False),
        ("npu", GpuInfo("Ascend910B", 32.0, 15.0, kind="npu"), Placement.model_offload, False),  # shared NPU
        ("xpu", GpuInfo("Intel Data Center GPU Max 1550", 64.0, 10.0, kind="xpu"), Placement.model_offload, True),
        ("mps", GpuInfo("Apple MPS", 16.0, 8.0, kind="mps"), Placement.resident, False),  # unified memory
    ],
)
def test_profiles_of_other_accelerators(compose_cfg, profile, info, placement, chunking):
    hw = resolve_hardware(hardware_of(compose_cfg, profile), info)
    assert (hw.device, hw.dtype, hw.placement, hw.forward_chunking) == (profile, "float16", placement, chunking)
    assert hw.compile_unet is CompileScope.none and not hw.compile_vae
    assert hw.vae_float32 == (profile == "mps")


def test_auto_on_another_accelerator_judges_by_free_memory_and_never_compiles(compose_cfg):
    auto = hardware_of(compose_cfg, "auto")
    npu = resolve_hardware(auto, GpuInfo("Ascend910B", 64.0, 40.0, kind="npu"))
    assert (npu.device, npu.placement, npu.compile_unet) == ("npu", Placement.resident, CompileScope.none)
    busy = resolve_hardware(auto, GpuInfo("Ascend910B", 64.0, 9.0, kind="npu"))  # another process holds most of it
    assert busy.name == "auto:lowmem" and busy.placement is Placement.model_offload and "9 GiB free" in busy.reason
    mac = resolve_hardware(auto, GpuInfo("Apple MPS", 16.0, 6.0, kind="mps"))
    assert (mac.name, mac.device, mac.placement) == ("auto:mps", "mps", Placement.resident)


def test_a_profile_without_its_accelerator_or_a_bad_device_is_refused(compose_cfg):
    with pytest.raises(ConfigError, match="hardware=npu needs an accelerator of kind 'npu'.*use hardware=auto"):
        resolve_hardware(hardware_of(compose_cfg, "npu"), GpuInfo("NVIDIA H100", 80.0))
    with pytest.raises(ConfigError, match="hardware=mps needs"):
        resolve_hardware(hardware_of(compose_cfg, "mps"), None)
    with pytest.raises(ConfigError, match=r"hardware.device='tpu' is not a device svd-batch knows.*npu\[:N\]"):
        hardware_of(compose_cfg, "resident", "hardware.device=tpu")


# --- out of memory: which stage, which fallback --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    image = Image.fromarray(np.random.default_rng(5).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    return pipe, image


@pytest.mark.parametrize(
    "module,stage",
    [("image_encoder", "encoding"), ("unet", "denoising"), ("vae.decoder", "decoding")],
)
def test_out_of_memory_is_classified_by_the_stage_that_ran_out(tiny, monkeypatch, module, stage):
    pipe, image = tiny
    target = pipe
    for name in module.split("."):
        target = getattr(target, name)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(target, "forward", out_of_memory)
    params = SampleParams(num_frames=4, num_inference_steps=2, height=128, width=128, decode_chunk_size=4)
    with pytest.raises(StageOutOfMemory, match=f"while {stage}") as raised:
        VideoGenerator(pipe).generate(image, params)
    assert raised.value.stage == stage


class FakePipe:
    def __init__(self):
        self.offloaded = self.chunked = False
        self.unet = self

    def enable_model_cpu_offload(self, device):
        self.offloaded = True

    def enable_forward_chunking(self):
        self.chunked = True


class StageGenerator:
    """Runs out of memory in `stage` until `fits(pipe, params)`; counts the attempts."""

    def __init__(self, stage, fits):
        self.pipe, self.stage, self.fits, self.attempts = FakePipe(), stage, fits, 0

    def generate(self, image, params, latents=None):
        self.attempts += 1
        if not self.fits(self.pipe, params):
            raise StageOutOfMemory(self.stage, torch.OutOfMemoryError("out of memory (injected)"))
        return Generation(frames=None, times=StageTimes(), peak_vram_gib=1.0)


def batch_on(device: str, generator: StageGenerator, compile_unet=CompileScope.none) -> worker.BatchRunner:
    hw = Hardware("resident", device, "float16", Placement.resident, False, 8, compile_unet, None, False, False,
                  None, "test")  # fmt: skip
    batch = worker.BatchRunner.__new__(worker.BatchRunner)
    batch.hardware, batch.generator, batch.offloaded, batch.chunked = hw, generator, False, False
    return batch


PARAMS = SampleParams(num_frames=25, height=576, width=1024, decode_chunk_size=8)


def test_running_out_while_denoising_goes_straight_to_offload_and_keeps_the_decode_chunk(monkeypatch):
    monkeypatch.setattr(worker, "release_memory", lambda device: None)
    generator = StageGenerator("denoising", lambda pipe, p: pipe.offloaded and pipe.chunked)
    _, used, changes = batch_on("npu:0", generator).generate_fitting(None, PARAMS)
    assert changes == "model offload + forward chunking" and used.decode_chunk_size == 8
    assert generator.attempts == 2  # one retry, not one per halved decode chunk


def test_running_out_while_decoding_halves_the_chunk_then_offloads(monkeypatch):
    monkeypatch.setattr(worker, "release_memory", lambda device: None)
    generator = StageGenerator("decoding", lambda pipe, p: p.decode_chunk_size <= 2)
    _, used, changes = batch_on("cuda", generator).generate_fitting(None, PARAMS)
    assert changes == "decode_chunk_size 8 -> 4; decode_chunk_size 4 -> 2" and used.decode_chunk_size == 2
    never = StageGenerator("decoding", lambda pipe, p: pipe.offloaded)
    _, used, changes = batch_on("cuda", never).generate_fitting(None, PARAMS)
    assert changes.endswith("decode_chunk_size 2 -> 1; model offload") and not never.pipe.chunked


def test_running_out_while_encoding_offloads_and_a_fallback_that_cannot_help_is_not_tried(monkeypatch):
    monkeypatch.setattr(worker, "release_memory", lambda device: None)
    generator = StageGenerator("encoding", lambda pipe, p: pipe.offloaded)
    _, used, changes = batch_on("xpu", generator).generate_fitting(None, PARAMS)
    assert changes == "model offload" and used.decode_chunk_size == 8 and generator.attempts == 2
    # on a Mac (unified memory) or with a whole-graph compiled UNet, offloading cannot help: fail with advice, once
    for device, scope in (("mps", CompileScope.none), ("cuda", CompileScope.full)):
        stuck = StageGenerator("denoising", lambda pipe, p: False)
        with pytest.raises(worker.OutOfMemory, match="while denoising, even after: no fallback can help that stage"):
            batch_on(device, stuck, scope).generate_fitting(None, PARAMS)
        assert stuck.attempts == 1


def test_running_out_while_the_model_is_placed_names_the_profile_that_fits(compose_cfg, monkeypatch):
    monkeypatch.setattr(accelerator, "empty_cache", lambda device: None)
    monkeypatch.setattr(accelerator, "memory_info", lambda kind, index=0: (int(7.9 * GIB), 80 * GIB))
    gpu = GpuInfo("NVIDIA H100 80GB HBM3", 79.2, free_gib=78.0)
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.2 GiB")
    named = load_config(compose_cfg("output_dir=/tmp/x", "hardware=resident"))
    hw = resolve_hardware(named.hardware, gpu)
    with pytest.raises(ConfigError, match=r"while placing the model on cuda with hardware=resident \(7.9 GiB free"
                                          r" now\).*use hardware=offload.*hardware=lowvram"):  # fmt: skip
        runner.offload_instead(oom, hw, named, "placing the model")
    auto = load_config(compose_cfg("output_dir=/tmp/x", "hardware=auto", "model=svd_xt", "model.init=random"))
    fallback = runner.offload_instead(oom, resolve_hardware(auto.hardware, gpu), auto, "building the model")
    assert (fallback.name, fallback.placement, fallback.compile_unet) == (
        "auto:offload", Placement.model_offload, CompileScope.none,
    )  # fmt: skip
    assert "out of memory while building the model -> model offload" in fallback.reason
    with pytest.raises(ValueError, match="not memory"):  # any other error stays what it is
        runner.offload_instead(ValueError("not memory"), hw, named, "placing the model")
    offloaded = dataclasses.replace(hw, placement=Placement.model_offload)
    with pytest.raises(torch.OutOfMemoryError):  # already offloaded: nothing to fall back to here
        runner.offload_instead(oom, offloaded, named, "placing the model")
