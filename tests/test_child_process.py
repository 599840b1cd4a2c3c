"""svd-batch's own child processes (W&B tracking, compiled-graph builders) import the svd_batch that is running."""

from __future__ import annotations

import subprocess
import sys

from svd_batch.child_process import module_environment
from tests.conftest import REPO

WHICH = "import svd_batch; print(svd_batch.__file__)"


def test_a_child_imports_this_svd_batch_from_any_folder_without_an_install(tmp_path):
    # -S: no site-packages, so no installed copy: as a run started as `python path/to/run.py` from another folder
    plain = {"PATH": "/usr/bin:/bin"}
    alone = subprocess.run([sys.executable, "-S", "-c", WHICH], cwd=tmp_path, env=plain, capture_output=True, text=True)
    assert alone.returncode != 0 and "No module named 'svd_batch'" in alone.stderr  # what the child would see
    child = subprocess.run(
        [sys.executable, "-S", "-c", WHICH], cwd=tmp_path, env=module_environment(plain), capture_output=True, text=True
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == str(REPO / "svd_batch" / "__init__.py")


def test_the_callers_python_path_is_kept_after_this_package():
    env = module_environment({"PYTHONPATH": "/somewhere/else"})
    assert env["PYTHONPATH"].split(":") == [str(REPO), "/somewhere/else"]
