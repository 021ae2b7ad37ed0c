"""Behavioural fingerprints of the generated test models: are these the goldens' models?

The golden arrays of tests/golden/modes were computed with the seeded test
models that models/make_test_hubert.py and models/make_test_wenet.py write.
A test run makes those models again, and must know that they are the same
models, or a golden comparison would fail for the wrong reason (a changed
generator) or pass for one (a stale golden).

Comparing the files' SHA-256 cannot tell: a model's bytes hold floats that
PyTorch, MKL and NumPy computed on the machine that made it, and those differ
in the last bits from one CPU to the next (the WeNet stand-in's ONNX file has
one hash on AMD and under ``MKL_CBWR=COMPATIBLE``, another on an AVX-512 Intel
and a third under AVX2). So a model is identified by what it computes:

- the WeNet encoder by its output on one fixed chunk (values built from
  integers, so the input is the same everywhere), offset 100, zero caches;
- the HuBERT checkpoint by its weights as stored (every tensor's mean and
  root mean square, and its first values).

Each is summarised as a :func:`fingerprint` and compared with the one stored
in tests/golden/modes/manifest.json by :data:`PROBE_TOL`: ONNX Runtime and
NumPy move these numbers by ~1e-6 between CPUs, while another seed or a
changed generator moves them by 1e-1 or more.

    python tests/model_probes.py --hubert models/test_hubert --wenet models/test_wenet_encoder.onnx

prints the entries; tests/golden/make_golden_modes.py stores them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

#: Absolute tolerance on each fingerprint number. ONNX Runtime's kernels differ
#: by CPU by ~1e-6 on outputs of size ~1; a different model differs by > 1e-1.
PROBE_TOL = 1e-4
#: How many leading values of the flattened array a fingerprint keeps.
HEAD = 8


def fingerprint(array: np.ndarray) -> dict[str, Any]:
    """Shape, mean, root mean square and first values of ``array``, as plain JSON numbers."""
    flat = np.asarray(array, dtype=np.float64).ravel()
    return {
        "shape": list(np.shape(array)),
        "mean": float(flat.mean()),
        "rms": float(np.sqrt(np.mean(flat * flat))),
        "head": [float(v) for v in flat[:HEAD]],
    }


def compare(got: dict[str, Any], want: dict[str, Any], what: str) -> list[str]:
    """What differs between two fingerprints by more than :data:`PROBE_TOL` (empty: same)."""
    if got["shape"] != want["shape"]:
        return [f"{what}: shape {got['shape']}, expected {want['shape']}"]
    problems = []
    for key in ("mean", "rms"):
        if not abs(got[key] - want[key]) <= PROBE_TOL:
            problems.append(f"{what}: {key} {got[key]:.6g}, expected {want[key]:.6g}")
    worst = max((abs(a - b) for a, b in zip(got["head"], want["head"], strict=True)), default=0.0)
    if not worst <= PROBE_TOL:
        problems.append(f"{what}: first values differ by {worst:.3g}")
    return problems


def wenet_probe_input() -> dict[str, np.ndarray]:
    """The fixed chunk: log-mel-like values 5 to 20 made from integers, offset 100, zero caches."""
    frames, mels = 67, 80
    index = np.arange(frames * mels, dtype=np.int64)
    # (index * 37) % 101 is exact in integers; / 100 and the float32 rounding are exact
    # IEEE operations, the same on every CPU.
    chunk = (5.0 + 15.0 * ((index * 37) % 101) / 100.0).astype(np.float32)
    return {
        "chunk": chunk.reshape(1, 1, frames, mels),
        "offset": np.full((1,), 100, np.int64),
        "att_cache": np.zeros((3, 8, 16, 128), np.float32),
        "cnn_cache": np.zeros((3, 1, 512, 14), np.float32),
    }


def wenet_probe(onnx_path: str) -> dict[str, Any]:
    """Fingerprint of the WeNet encoder's ``output`` on :func:`wenet_probe_input`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], wenet_probe_input())
    return {"output": fingerprint(output)}


def hubert_probe(checkpoint: str) -> dict[str, Any]:
    """Fingerprint of every tensor of the HuBERT checkpoint's ``model.safetensors``."""
    from safetensors.numpy import load_file

    tensors = load_file(os.path.join(checkpoint, "model.safetensors"))
    return {key: fingerprint(tensors[key]) for key in sorted(tensors)}


PROBES = {"wenet": wenet_probe, "hubert": hubert_probe}
RULES = {
    "wenet": "tests/model_probes.py: the output on a fixed chunk, offset 100, zero caches"
    " (shape, mean, rms, first values), within PROBE_TOL",
    "hubert": "tests/model_probes.py: every tensor of model.safetensors (shape, mean, rms,"
    " first values), within PROBE_TOL",
}


def manifest_entry(kind: str, path: str) -> dict[str, Any]:
    """What tests/golden/modes/manifest.json stores of the ``kind`` model at ``path``."""
    return {"probe_rule": RULES[kind], "probe": PROBES[kind](path)}


def check(kind: str, path: str, manifest: dict[str, Any]) -> None:
    """Raise AssertionError, saying what differs, unless ``path`` is the goldens' ``kind`` model."""
    want = manifest["models"][kind]["probe"]
    got = PROBES[kind](path)
    problems = [f"missing {key}" for key in want if key not in got]
    problems += [f"unexpected {key}" for key in got if key not in want]
    for key in want:
        if key in got:
            problems += compare(got[key], want[key], key)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise AssertionError(
            f"the test {kind} model {path} computes other numbers than the one the goldens were"
            f" made with ({shown}): the generator changed; run tests/golden/make_golden_modes.py"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the test models' fingerprints as JSON.")
    parser.add_argument("--hubert", help="HuBERT checkpoint directory (make_test_hubert.py)")
    parser.add_argument("--wenet", help="WeNet encoder ONNX file (make_test_wenet.py)")
    args = parser.parse_args(argv)
    out = {}
    if args.hubert:
        out["hubert"] = manifest_entry("hubert", args.hubert)
    if args.wenet:
        out["wenet"] = manifest_entry("wenet", args.wenet)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
