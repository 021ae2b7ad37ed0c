"""Every benchmark script runs against the installed package, from any directory.

The README installs the package with ``pip install .``: the compiled core
(``synctalk_audio._core``) then exists only in site-packages, never in
``src/``. A script that puts ``src/`` first on ``sys.path`` imports a package
without its core and stops with an ImportError. Here each script's ``--help``
runs in a fresh interpreter, from a temporary directory, that sees the package
only as such an installed copy: the package directory with the core beside it,
and no ``src/`` on the path, no editable-install hook (``python -S``).
"""

from __future__ import annotations

import glob
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

import synctalk_audio
from synctalk_audio import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


def _scripts() -> list[str]:
    """The benchmark files meant to be run as scripts (those with a ``__main__`` block)."""
    found = []
    for path in sorted(glob.glob(os.path.join(BENCHMARKS, "*.py"))):
        with open(path, encoding="utf-8") as f:
            if 'if __name__ == "__main__"' in f.read():
                found.append(os.path.basename(path))
    return found


SCRIPTS = _scripts()


def test_the_scripts_are_found():
    assert {"jobs.py", "long_file.py", "stream_latency.py"} <= set(SCRIPTS)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory holding the package as ``pip install .`` lays it out, core included."""
    site_dir = tmp_path_factory.mktemp("site-packages")
    package = os.path.dirname(os.path.abspath(synctalk_audio.__file__))
    copy = site_dir / "synctalk_audio"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    core = os.path.abspath(str(_core.__file__))
    if not (copy / os.path.basename(core)).exists():  # an editable install keeps it apart
        shutil.copy2(core, copy)
    return str(site_dir)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_runs_against_the_installed_package(script: str, installed: str, tmp_path: Path):
    # -S: no site-packages hooks, so nothing but the path below can supply the package;
    # the installed copy comes before the environment's own site-packages.
    path = [installed, *site.getsitepackages(), site.getusersitepackages()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    done = subprocess.run(
        [sys.executable, "-S", os.path.join(BENCHMARKS, script), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, f"{script} --help: exit {done.returncode}\n{done.stderr}"
    assert "usage:" in done.stdout, done.stdout
