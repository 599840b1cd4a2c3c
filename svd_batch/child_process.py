"""Starting one of svd-batch's own modules in a new Python (`python -m svd_batch....`): the W&B tracking process and
the compiled-graph builders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds svd_batch/


def module_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def module_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with this svd_batch importable first: a run started as `python
    path/to/run.py` from another folder, without the package installed, imports it from beside run.py, which a new
    Python would not see; and an installed copy must not stand in for the one running."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    return env
