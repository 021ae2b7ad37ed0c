#!/usr/bin/env python3
"""Write staged test vectors of the Kaldi fbank (mode ``wenet``) for a port (iOS: Swift/Accelerate).

For one short deterministic int16-valued clip (a chirp with noise, a
near-full-scale burst, then silence) this writes every stage of the fbank as
computed by the NumPy float64 reference (tests/reference/kaldi_fbank.py, with
its float32 mel filters built as torchaudio builds them; not by this project's
C++ core) to ``tests/vectors_fbank/`` as little-endian .npy files, plus
``index.json`` with each file's shape, meaning and the tolerance a port must
meet. docs/NUMERICS.md ("The Kaldi fbank of the wenet mode") explains them;
tests/test_fbank_vectors.py checks the core against them and that they still
match a fresh run of the reference.

Usage (from the repository root)::

    python tools/make_fbank_vectors.py            # writes tests/vectors_fbank/
    python tools/make_fbank_vectors.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from reference import kaldi_fbank as K  # noqa: E402

FORMAT = "synctalk-fbank-vectors/1"


def clip() -> np.ndarray:
    """0.2 s chirp + noise, 40 ms burst near full scale, 50 ms silence: int16 values, float32."""
    rng = np.random.default_rng(8)
    t = np.arange(3200) / 16000
    chirp = 0.4 * np.sin(2 * np.pi * (100 * t + 0.5 * (6000 / 0.2) * t**2))
    chirp += 0.02 * rng.standard_normal(t.size)
    burst = 0.99 * np.sign(np.sin(2 * np.pi * 440 * np.arange(640) / 16000))
    x = np.concatenate([chirp, burst, np.zeros(800)])
    return np.trunc(np.clip(x, -1, 1) * np.float32(32767)).astype(np.float32)


def tolerance(name: str, array: np.ndarray) -> dict[str, Any]:
    """What a port must meet for stage ``name`` (max abs difference)."""
    scale = float(np.abs(array).max()) if array.size else 0.0
    if name in ("input", "frames", "banks"):
        return {"exact": True, "abs": 0.0, "rule": "copied values / float32 operations"}
    if name == "log":
        return {"abs": 1e-8, "rule": "natural log of the energies (float64 chain: ~1e-11)"}
    rel = {"window": 1e-15, "spectrum": 1e-12, "power": 1e-11, "energy": 1e-11}.get(name, 1e-13)
    return {"abs": rel * max(scale, 1.0), "rule": f"{rel:g} of the array's largest |value|"}


def build() -> dict[str, np.ndarray]:
    wave = clip()
    out = {"input": wave, "window": K.povey_window(), "banks": K.float32_banks()}
    for name, value in K.stages(wave.astype(np.float64)).items():
        if name == "spectrum":
            value = np.stack([value.real, value.imag], axis=-1)
        out[name] = value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "vectors_fbank"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    arrays = build()
    index: dict[str, Any] = {
        "format": FORMAT,
        "generator": "tools/make_fbank_vectors.py",
        "reference": "tests/reference/kaldi_fbank.py (stages, float32_banks)",
        "numpy": np.__version__,
        "params": {
            "sample_rate": K.SAMPLE_RATE,
            "frame_length": K.FRAME_LENGTH,
            "frame_shift": K.FRAME_SHIFT,
            "fft_size": K.FFT_SIZE,
            "num_bins": K.NUM_BINS,
            "low_freq": K.LOW_FREQ,
            "high_freq": K.HIGH_FREQ,
            "preemphasis": K.PREEMPHASIS,
            "log_floor": K.FLT_EPSILON,
        },
        "conventions": {
            "files": ".npy version 1.0, little-endian, C order",
            "layout": "frame-major: (F, 400), (F, 512), (F, 257), (F, 80);"
            " F = 1 + (N - 400) // 160",
            "spectrum": "float64 (F, 257, 2): [..., 0] real, [..., 1] imaginary part",
            "tolerance": "max |port - vector| <= abs; 'exact' means bitwise equal",
        },
        "files": {},
    }
    for name, value in arrays.items():
        le = value.astype(value.dtype.newbyteorder("<"))
        np.save(os.path.join(args.out, name + ".npy"), le, allow_pickle=False)
        index["files"][name] = {
            "file": name + ".npy",
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "tolerance": tolerance(name, value),
        }
    with open(os.path.join(args.out, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    print(f"wrote {len(arrays)} arrays to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
