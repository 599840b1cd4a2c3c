"""svd_batch.bytecode: bytecode kept under the cache folder exactly when the environment keeps none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# a child Python that imports a stand-in for torch after keep_bytecode, and reports what happened
CHILD = """
import json, sys
from svd_batch.bytecode import keep_bytecode
prefix = keep_bytecode(sys.argv[1], probe="probepkg")
import probepkg
print(json.dumps({"prefix": None if prefix is None else str(prefix), "pycache_prefix": sys.pycache_prefix,
                  "cached": probepkg.__spec__.cached}))
"""


@pytest.fixture
def probe_package(tmp_path: Path) -> Path:
    """A package with source only, like an environment installed without bytecode."""
    package = tmp_path / "site" / "probepkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 1\n")
    return package


def run_child(site: Path, cache: Path, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    environment |= {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), **env}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(cache)], env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_no_bytecode_allowed_beside_the_source_caches_it_under_the_cache_folder(probe_package, tmp_path):
    cache = tmp_path / "cache"
    first = run_child(probe_package.parent, cache, PYTHONDONTWRITEBYTECODE="1")
    assert first["prefix"] == str(cache / "pycache") == first["pycache_prefix"]
    cached = Path(first["cached"])
    assert cached.is_file() and cached.is_relative_to(cache / "pycache")  # written there, not beside the source
    assert not (probe_package / "__pycache__").exists()
    written = cached.stat().st_mtime_ns

    second = run_child(probe_package.parent, cache, PYTHONDONTWRITEBYTECODE="1")
    assert second["cached"] == first["cached"] and cached.stat().st_mtime_ns == written  # read, not compiled again


def test_bytecode_beside_the_source_is_left_alone(probe_package, tmp_path):
    run_child(probe_package.parent, tmp_path / "first")  # Python may write it: it does, beside the source
    assert list((probe_package / "__pycache__").glob("__init__.*.pyc"))
    for env in ({}, {"PYTHONDONTWRITEBYTECODE": "1"}):  # installed with bytecode (as pip does): nothing to change
        result = run_child(probe_package.parent, tmp_path / "cache", **env)
        assert result["prefix"] is None and result["pycache_prefix"] is None
    assert not (tmp_path / "cache").exists()


def test_the_users_own_prefix_is_left_alone(probe_package, tmp_path):
    own = tmp_path / "own"
    result = run_child(probe_package.parent, tmp_path / "cache", PYTHONPYCACHEPREFIX=str(own),
                       PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
    assert result["prefix"] is None and result["pycache_prefix"] == str(own)
    assert not (tmp_path / "cache").exists()


def test_a_read_only_environment_caches_it_under_the_cache_folder(probe_package, tmp_path, monkeypatch):
    from svd_batch import bytecode

    monkeypatch.syspath_prepend(str(probe_package.parent))
    monkeypatch.setattr(sys, "pycache_prefix", None)  # restored after the test, as are the two below
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", "")
    monkeypatch.setattr(bytecode, "_writable", lambda folder: False)  # a read-only site-packages (tests run as root)
    assert bytecode.keep_bytecode(tmp_path / "cache", probe="probepkg") == tmp_path / "cache" / "pycache"
    assert sys.pycache_prefix == os.environ["PYTHONPYCACHEPREFIX"] == str(tmp_path / "cache" / "pycache")
