"""`exit_now` skips only the interpreter's teardown: threads finish, atexit functions run, logs and output are
flushed, and the exit code is the one given."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import atexit, logging, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from svd_batch.quick_exit import exit_now

out = Path(sys.argv[1])
logging.basicConfig(filename=out / "run.log", level=logging.INFO)
atexit.register(lambda: (out / "atexit").write_text("ran"))
threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
pool = ThreadPoolExecutor(2)
pool.submit(lambda: (time.sleep(0.3), (out / "task").write_text("done")))
pool.submit(lambda: None).result()  # a worker left idle
logging.getLogger("svd_batch").info("summary")
sys.stdout.write("no newline yet")
exit_now(3)
"""


def test_exit_now_keeps_everything_a_normal_exit_keeps(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == "no newline yet"
    assert (tmp_path / "thread").read_text() == "done" and (tmp_path / "task").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert "summary" in (tmp_path / "run.log").read_text()
