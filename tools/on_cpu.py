#!/usr/bin/env python3
"""Run the test suite, or any Python command, as another x86-64 CPU (qemu-user).

NumPy, PyTorch, MKL, oneDNN, ONNX Runtime and glibc's libm each pick their
code by the CPU they run on, so their floats differ in the last bits from
one CPU to the next. A test that passes on the developer's CPU can fail on a
user's. This script makes that visible on one machine: QEMU's user-mode
emulator runs the interpreter as a named CPU model, whose CPUID every library
then sees (docs/NUMERICS.md, "Tests on any CPU").

    python3 tools/on_cpu.py Haswell-v4 -- -m emulated -q       # pytest selection
    python3 tools/on_cpu.py Nehalem-v1 --probe                 # what the libraries see
    python3 tools/on_cpu.py EPYC-Rome-v1 --python -- -c "import numpy"

How: a virtual environment that sees this interpreter's packages
(``--system-site-packages``), whose ``bin/python*`` are scripts running
``qemu-x86_64 -cpu CPU -0 VENV/bin/python3 REAL_PYTHON "$@"``. ``-0`` sets
argv[0], so ``sys.executable`` and ``sys.prefix`` stay the venv's and every
subprocess a test starts through ``sys.executable`` runs emulated too.

Before running anything, a probe inside the emulated interpreter prints the
CPU features NumPy reports, PyTorch's CPU capability, ONNX Runtime's version
and the SIMD level of the package's C++ core, and the script stops if the
CPU did not take effect (a level the model lacks still enabled).

Emulation (QEMU's TCG) is 10 to 40 times slower than the host and has no
AVX-512: that level is covered by native runs on machines that have it. The
package and its test dependencies must be installed in this interpreter
first (the README's test command does it); run from a venv, the emulated
interpreter sees that venv's packages too. Test models are slow to make
under emulation; run the suite natively first with ``SYNCTALK_TEST_MODELS``
set to a folder, and give this script the same folder (``--models``): the
emulated run then checks those models by their behaviour and reuses them
(tests/test_models.py).

Needs ``qemu-x86_64`` from QEMU 8 or newer (tools/install_emulators.sh): QEMU
7.2, Debian 12's own, crashes on AVX2 gathers that NumPy uses.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: What each CPU model CI uses must NOT show: proof that emulation took effect.
#: NumPy's names (``numpy._core._multiarray_umath.__cpu_features__``).
ABSENT = {
    "Nehalem-v1": ["AVX", "AVX2", "FMA3", "AVX512F"],
    "Haswell-v4": ["AVX512F"],
    "EPYC-Rome-v1": ["AVX512F"],
}
#: ... and what it MUST show (so that a wrong model name does not pass as "nothing").
PRESENT = {
    "Nehalem-v1": ["SSE42"],
    "Haswell-v4": ["AVX2", "FMA3"],
    "EPYC-Rome-v1": ["AVX2", "FMA3"],
}

#: QEMU 7.2 (Debian 12's) faults on the masked-off elements of AVX2 gathers
#: (vpgatherdd in NumPy's float32 np.maximum with a scalar operand): the test
#: process dies with SIGSEGV where the real CPU does not. 10.0 emulates them
#: right; 8.x and 9.x have not been tried here.
MIN_QEMU = (8, 0)
INSTALL = (
    "install QEMU 8 or newer; on Debian 12: tools/install_emulators.sh"
    " (qemu-user from bookworm-backports)"
)

PROBE = r"""
import json, platform, warnings
warnings.simplefilter("ignore")
import numpy as np
try:
    from numpy._core import _multiarray_umath as umath
except ImportError:
    from numpy.core import _multiarray_umath as umath
out = {"machine": platform.machine(),
       "numpy_features": sorted(k for k, v in umath.__cpu_features__.items() if v),
       "numpy_dispatch": [t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]}
try:
    import onnxruntime
    out["onnxruntime"] = onnxruntime.__version__
except ImportError:
    out["onnxruntime"] = None
try:
    import torch
    out["torch"] = torch.__version__
    out["torch_capability"] = torch.backends.cpu.get_cpu_capability()
except ImportError:
    out["torch"] = None
from synctalk_audio import _core
out["core_simd"] = _core.MelProcessor(_core.MelOptions()).simd
print(json.dumps(out))
"""


def real_python() -> str:
    """The interpreter binary behind ``sys.executable`` (venvs and pyenv shims resolved)."""
    base = getattr(sys, "_base_executable", sys.executable)
    return os.path.realpath(base)


def qemu_version(qemu: str) -> tuple[int, ...]:
    """QEMU's version as numbers, from ``qemu-x86_64 --version``."""
    done = subprocess.run([qemu, "--version"], check=False, capture_output=True, text=True)
    found = re.search(r"version (\d+)\.(\d+)", done.stdout)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def quiet_cpu(cpu: str, qemu: str) -> str:
    """``cpu`` less the features TCG cannot emulate (else QEMU warns on every start).

    QEMU prints "TCG doesn't support requested feature: CPUID.01H:ECX.pcid" and
    the like on stderr for each process; tests that read a command's stderr
    would see it. Those features (pcid, x2apic, ...) are system-level and no
    numeric library looks at them, so they are turned off by name.
    """
    done = subprocess.run(
        [qemu, "-cpu", cpu, "/bin/true"], check=False, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"on_cpu: qemu-x86_64 refuses CPU model {cpu!r}:\n{done.stderr}")
    names = sorted(set(re.findall(r"requested feature: \S+?\.([\w-]+) \[bit", done.stderr)))
    return ",".join([cpu, *(f"-{n}" for n in names)])


def make_venv(cpu: str, folder: str, qemu: str) -> str:
    """Make ``folder`` an emulated venv for ``cpu``; return its ``bin/python3``."""
    if os.path.exists(folder):
        shutil.rmtree(folder)
    subprocess.run(
        [real_python(), "-m", "venv", "--system-site-packages", "--without-pip", folder],
        check=True,
    )
    binary = real_python()
    model = quiet_cpu(cpu, qemu)
    python3 = os.path.join(folder, "bin", "python3")
    script = (
        "#!/bin/sh\n"
        f"# {cpu} under qemu-user: made by tools/on_cpu.py\n"
        f'exec "{qemu}" -cpu "{model}" -0 "{python3}" "{binary}" "$@"\n'
    )
    if sys.prefix != sys.base_prefix:
        # Run from a venv: the emulated one sees that venv's packages too (an
        # editable install of this package included), before the base ones.
        import site

        lib = os.path.join(folder, "lib")
        (pyver,) = os.listdir(lib)
        with open(os.path.join(lib, pyver, "site-packages", "_on_cpu.pth"), "w") as f:
            dirs = ", ".join(repr(d) for d in site.getsitepackages())
            f.write(f"import site; list(map(site.addsitedir, ({dirs},)))\n")
    bindir = os.path.join(folder, "bin")
    for name in os.listdir(bindir):
        if name.startswith("python"):
            path = os.path.join(bindir, name)
            os.remove(path)
            with open(path, "w", encoding="utf-8") as f:
                f.write(script)
            os.chmod(path, 0o755)
    return python3


def probe(python: str, cpu: str) -> dict[str, object]:
    """What the libraries see in the emulated interpreter; raise if ``cpu`` did not take."""
    done = subprocess.run(
        [python, "-c", PROBE],
        check=False,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    if done.returncode != 0:
        raise SystemExit(f"on_cpu: the emulated interpreter failed:\n{done.stderr}")
    seen: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    features = set(seen["numpy_features"])  # type: ignore[arg-type]
    wrong = [f for f in ABSENT.get(cpu, []) if f in features]
    missing = [f for f in PRESENT.get(cpu, []) if f not in features]
    if wrong or missing:
        raise SystemExit(
            f"on_cpu: {cpu} did not take effect: NumPy still sees {wrong} / lacks {missing}"
        )
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run pytest (or Python) as another x86-64 CPU under qemu-user.",
        epilog="Arguments after -- go to pytest (or, with --python, to the interpreter).",
    )
    parser.add_argument("cpu", help="a QEMU CPU model: Nehalem-v1, Haswell-v4, EPYC-Rome-v1, ...")
    parser.add_argument("--venv", help="where to make the emulated venv (default: a temp folder)")
    parser.add_argument(
        "--models",
        help="folder of test models made natively (SYNCTALK_TEST_MODELS; reused, checked)",
    )
    parser.add_argument("--probe", action="store_true", help="only print what the libraries see")
    parser.add_argument("--python", action="store_true", help="run the interpreter, not pytest")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    rest = argv[split + 1 :]

    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print(f"on_cpu: qemu-x86_64 not found: {INSTALL}", file=sys.stderr)
        return 2
    version = qemu_version(qemu)
    if version < MIN_QEMU:
        print(
            f"on_cpu: {qemu} is QEMU {'.'.join(map(str, version))}; QEMU before"
            f" {'.'.join(map(str, MIN_QEMU))} crashes emulating AVX2 gathers (a masked-off"
            f" element of vpgatherdd faults: NumPy's float32 maximum/minimum). {INSTALL}",
            file=sys.stderr,
        )
        return 2
    folder = args.venv or os.path.join(tempfile.gettempdir(), f"synctalk-on-cpu-{args.cpu}")
    python = make_venv(args.cpu, folder, qemu)
    started = time.monotonic()
    seen = probe(python, args.cpu)
    print(f"on_cpu: {args.cpu}: {json.dumps(seen)} ({time.monotonic() - started:.1f} s)")
    if args.probe:
        return 0
    env = dict(os.environ)
    env["SYNCTALK_EMULATED_CPU"] = args.cpu
    if args.models:
        env["SYNCTALK_TEST_MODELS"] = os.path.abspath(args.models)
    command = [python, *rest] if args.python else [python, "-m", "pytest", *rest]
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT, env=env)
    print(f"on_cpu: {args.cpu}: exit {code} after {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
