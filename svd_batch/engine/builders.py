"""The processes that build compiled graphs (`python -m svd_batch.engine.compiled`), a few at a time.

A builder spends its first ~10 s importing torch and diffusers (H200, cold bytecode: benchmarks/h200-2026-12-02g).
A run that will build graphs starts its builders on standby before it imports them itself: they import while the
run loads its model, then each waits for the spec of the graph it will build. Nothing here imports torch, so the
run can start them first.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from svd_batch.child_process import module_command, module_environment
from svd_batch.engine.artifacts import ArtifactStore

BUILDER_MODULE = "svd_batch.engine.compiled"
STANDBY_FLAG = "--standby"
BUILDER_NICENESS = 10  # added to the run's own


def default_build_limit(cpus: int | None = None) -> int:
    """How many builders run at once: one per 4 CPU cores, 2 to 4 (the UNet's parts and a VAE decoder on a 16-core
    machine). Each builder traces and lowers its graph on one core, and its kernels compile on the cores it gets."""
    return max(2, min(4, (cpus or os.cpu_count() or 2) // 4))


def lower_priority(process: subprocess.Popen) -> None:
    """A builder (and the compile workers it starts, which inherit it) yields the CPU to the run's own work (imports,
    kernel launches) when every core is busy: four builders and their workers outnumber 16 cores."""
    with contextlib.suppress(AttributeError, OSError):  # not on this platform, or the process has gone
        own = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, process.pid, min(19, own + BUILDER_NICENESS))


def start_builder(argument: str, log_file: IO, parallel: int, stdin: int | None = None) -> subprocess.Popen:
    """`python -m svd_batch.engine.compiled ARGUMENT` (a spec's path, or the standby flag), writing to `log_file`, at a
    lower CPU priority than this process, its kernel-compiling workers sharing the cores with `parallel` others."""
    env = module_environment()
    env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(max(1, (os.cpu_count() or 2) // parallel)))
    process = subprocess.Popen(
        module_command(BUILDER_MODULE, argument),
        stdin=stdin,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # a Ctrl-C in the terminal reaches the run, which stops its builders
        text=True,
    )
    lower_priority(process)
    return process


class BuildQueue:
    """Builder processes, at most `limit` at a time in the order they were asked for, one per key however many
    compilers want it (the benchmark's profiles share one queue and several of them need the same VAE decoder).
    A build takes a builder on standby where one is waiting."""

    def __init__(self, limit: int | None = None):
        self.limit = limit or default_build_limit()
        self.builds: dict[str, Build] = {}
        self.standby: list[subprocess.Popen] = []

    def start_standby(self, count: int, log_path: Path) -> None:
        """Starts `count` builders (at most `limit`) that import what a build needs, then wait for a spec."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log_file:
            for _ in range(min(count, self.limit) - len(self.standby)):
                self.standby.append(start_builder(STANDBY_FLAG, log_file, self.limit, stdin=subprocess.PIPE))

    def take_standby(self) -> subprocess.Popen | None:
        """A builder on standby that is still waiting, if any."""
        while self.standby:
            process = self.standby.pop(0)
            if process.poll() is None:
                return process
        return None

    def submit(self, key: str, spec: dict[str, Any], store: ArtifactStore, later: bool = False) -> Build:
        """Queues a build (`later`: after every other one asked for, started or not)."""
        build = self.builds.get(key)
        if build is None or (build.done and build.process.returncode != 0):
            build = self.builds[key] = Build(key, spec, store, later=later)
        self.start_ready()
        return build

    def start_ready(self) -> None:
        running = sum(b.running for b in self.builds.values())
        for build in sorted(self.builds.values(), key=lambda b: b.later):  # stable: in the order asked for
            if running >= self.limit:
                break
            if build.process is None:
                build.start(self.limit, self.take_standby())
                running += 1

    def cancel(self, builds) -> None:
        for build in builds:
            if build.running:
                build.process.terminate()
            self.builds.pop(build.key, None)

    def close_standby(self) -> None:
        """Lets the builders still on standby go (no spec: they exit)."""
        for process in self.standby:
            _close(process.stdin)
        self.standby.clear()


@dataclass(eq=False)
class Build:
    """One builder process: `python -m svd_batch.engine.compiled <key>.spec.json`, or a builder on standby handed
    that spec."""

    key: str
    spec: dict[str, Any]
    store: ArtifactStore
    later: bool = False  # for later videos and runs: started after the builds the run waits for
    process: subprocess.Popen | None = None
    started: float = 0.0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def done(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def start(self, parallel: int, standby: subprocess.Popen | None = None) -> None:
        self.store.root.mkdir(parents=True, exist_ok=True)
        spec_path = self.store.root / f"{self.key}.spec.json"
        self.started = time.time()
        spec_path.write_text(json.dumps({**self.spec, "started": self.started}, indent=1))
        if standby is not None:
            try:
                standby.stdin.write(f"{spec_path}\n")
                _close(standby.stdin)
                self.process = standby
                return
            except OSError:  # it died since it was found waiting: a new builder instead
                standby.kill()
        with self.store.log_path(self.key).open("w") as log_file:
            self.process = start_builder(str(spec_path), log_file, parallel)


def _close(stream: IO | None) -> None:
    try:
        if stream is not None:
            stream.close()
    except OSError:  # the process has gone
        pass
