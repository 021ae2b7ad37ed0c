#!/usr/bin/env python3
"""Run the numeric tests again with NumPy's SIMD dispatch narrowed (.ci/run calls this).

NumPy picks its SIMD kernels by CPU at run time, and results (log10, exp,
complex abs, ...) differ in the last bits between them; so do OpenBLAS's
matrix kernels and glibc's FMA and plain variants of exp/log/sin/cos. A test
that compares such floats bit for bit passes on the CPU it was written on
and fails on another (docs/NUMERICS.md, "Tests on any CPU"). This script
runs the tests marked ``numeric`` under other kernels of this very machine,
so such a test fails here:

1. "AVX-512 off": ``NPY_DISABLE_CPU_FEATURES`` = NumPy's AVX-512 targets found
   on this CPU (``X86_V4 AVX512_ICL`` on a Zen 4 with NumPy 2.4).
2. "baseline only": every dispatched target NumPy found (``X86_V3 X86_V4
   AVX512_ICL`` there, the ASIMD/SVE extras on aarch64); on x86-64 also
   OpenBLAS's Nehalem kernels (``OPENBLAS_CORETYPE``, when NumPy's BLAS is an
   OpenBLAS that reports its kernel) and glibc's libm without its FMA/AVX2
   variants (``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA``).

Only what this machine has is turned off: NumPy refuses to disable a baseline
target and warns about a name it does not dispatch (an ImportWarning, an error
under this project's ``filterwarnings = error``), so the names come from
NumPy's own ``__cpu_dispatch__`` and ``__cpu_features__``. A pass with
nothing to turn off (no AVX-512 on this CPU; no dispatched target found) is
reported and skipped: the normal run already covered that setting. Before
each pass a fresh interpreter checks that the setting took effect and prints
the targets left enabled.

Usage (from the repository root)::

    python3 tools/numeric_passes.py              # both passes
    python3 tools/numeric_passes.py --list       # only print the settings
    python3 tools/numeric_passes.py -- -x -q     # extra pytest arguments
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMPY_VAR = "NPY_DISABLE_CPU_FEATURES"
OPENBLAS_VAR = "OPENBLAS_CORETYPE"
GLIBC_VAR = "GLIBC_TUNABLES"
#: OpenBLAS kernel of the baseline pass: SSE4.2, what NumPy's x86-64 baseline needs anyway.
OPENBLAS_BASELINE = "Nehalem"
GLIBC_NO_FMA = "glibc.cpu.hwcaps=-AVX2,-FMA"

#: Run in a fresh interpreter: what NumPy, OpenBLAS and libm do under its environment.
PROBE = r"""
import ctypes, ctypes.util, hashlib, json, math, warnings
warnings.simplefilter("error")
import numpy as np
try:
    from numpy._core import _multiarray_umath as umath
except ImportError:
    from numpy.core import _multiarray_umath as umath
features = umath.__cpu_features__
out = {
    "numpy": np.__version__,
    "baseline": list(umath.__cpu_baseline__),
    "dispatch": list(umath.__cpu_dispatch__),
    "enabled": [t for t in umath.__cpu_dispatch__ if features.get(t)],
    "blas": None,
    "libm": None,
}
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import threadpoolctl
        info = threadpoolctl.threadpool_info()
    for lib in info:
        if lib.get("user_api") == "blas":
            out["blas"] = {"api": lib.get("internal_api"), "arch": lib.get("architecture")}
            break
except ImportError:
    pass
name = ctypes.util.find_library("m")
if name:
    libm = ctypes.CDLL(name)
    digest = hashlib.sha256()
    for fn in ("exp", "log", "sin", "cos"):
        f = getattr(libm, fn)
        f.restype, f.argtypes = ctypes.c_double, [ctypes.c_double]
        digest.update(np.array([f(0.37 + 0.001 * i) for i in range(20000)]).tobytes())
    out["libm"] = digest.hexdigest()
print(json.dumps(out))
"""


def probe(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"probing NumPy under this setting failed:\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def clean_env() -> dict[str, str]:
    """This environment without NPY_DISABLE_CPU_FEATURES (so the probe sees every
    dispatched target the CPU has); OPENBLAS_CORETYPE and GLIBC_TUNABLES stay as given."""
    env = dict(os.environ)
    env.pop(NUMPY_VAR, None)
    return env


def plan(default: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """The passes for this machine: (label, environment variables to set)."""
    found = default["enabled"]  # with nothing disabled: the dispatched targets this CPU has
    avx512 = [t for t in found if t == "X86_V4" or t.startswith("AVX512")]
    baseline: dict[str, str] = {NUMPY_VAR: " ".join(found)} if found else {}
    if platform.machine().lower() in ("x86_64", "amd64"):
        blas = default.get("blas") or {}
        if blas.get("api") == "openblas" and blas.get("arch"):
            baseline[OPENBLAS_VAR] = OPENBLAS_BASELINE
        if GLIBC_VAR not in os.environ and platform.libc_ver()[0] == "glibc":
            baseline[GLIBC_VAR] = GLIBC_NO_FMA
    return [
        ("AVX-512 off", {NUMPY_VAR: " ".join(avx512)} if avx512 else {}),
        ("baseline only", baseline),
    ]


def describe(settings: dict[str, str]) -> str:
    return " ".join(f"{k}={v!r}" for k, v in settings.items()) or "(nothing to narrow)"


def verify(settings: dict[str, str], default: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Lines saying what the setting did; raises SystemExit if it did not take effect."""
    disabled = settings.get(NUMPY_VAR, "").split()
    still = [t for t in disabled if t in got["enabled"]]
    if still:
        raise SystemExit(f"{NUMPY_VAR} did not take effect: {' '.join(still)} still enabled")
    lines = [
        f"  numpy {got['numpy']}: baseline {' '.join(got['baseline'])}; dispatched targets"
        f" enabled {' '.join(got['enabled']) or 'none'} (default: {' '.join(default['enabled'])})"
    ]
    if OPENBLAS_VAR in settings:
        arch = (got.get("blas") or {}).get("arch")
        if arch != settings[OPENBLAS_VAR]:
            raise SystemExit(f"{OPENBLAS_VAR} did not take effect: OpenBLAS reports {arch!r}")
        lines.append(f"  OpenBLAS kernel {arch} (default: {default['blas']['arch']})")
    if GLIBC_VAR in settings:
        changed = got["libm"] != default["libm"]
        lines.append(
            "  libm exp/log/sin/cos: "
            + (
                "other results than by default (non-FMA variants in use)"
                if changed
                else "same results as by default (no FMA variants to turn off here)"
            )
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--list", action="store_true", help="print the settings, run nothing")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)

    default = probe(clean_env())
    print(
        f"numpy {default['numpy']} on {platform.machine()}: dispatched targets found on this"
        f" CPU: {' '.join(default['enabled']) or 'none'}",
        flush=True,
    )
    failed = []
    for label, settings in plan(default):
        print(f"\n=== numeric tests, {label}: {describe(settings)}", flush=True)
        if not settings:
            print("  skipped: this CPU has nothing of that kind to turn off", flush=True)
            continue
        env = {**clean_env(), **settings}
        for line in verify(settings, default, probe(env)):
            print(line, flush=True)
        if args.list:
            continue
        command = [sys.executable, "-m", "pytest", "-m", "numeric", *args.pytest_args]
        done = subprocess.run(command, env=env, cwd=ROOT)
        print(f"=== {label}: exit status {done.returncode}", flush=True)
        if done.returncode != 0:
            failed.append(label)
    if failed:
        print(f"\nnumeric tests failed with: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
