"""Ending a finished command without Python's teardown.

When `run.py`'s main returns, everything a run makes is written: the videos, the index and report, the W&B run (its
process has finished), the compiled graphs (the builders were waited for). What is left is Python's own teardown:
freeing every module and object, then the CUDA context and the native libraries' destructors. From the summary line
to the process's end, a one-video full-size run on the H200 took 2.55 and 3.30 s with it, 0.77 and 1.21 s with
`exit_now` (benchmarks/h200-2026-12-02e, call 4); the default tiny run on a 2-core CPU 1.91 against 0.63 s.
`exit_now` takes Python's own exit steps up to that teardown, then ends the process at once.

Only the standard library is imported here.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
from typing import NoReturn


def exit_now(code: int = 0) -> NoReturn:
    """Ends the process with `code` as Python's exit would, up to its teardown: threads are joined (idle executor
    workers stopped), the atexit functions run, logging and the standard streams are flushed."""
    threading._shutdown()  # what the interpreter runs first at exit: joins non-daemon threads, stops executors
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
