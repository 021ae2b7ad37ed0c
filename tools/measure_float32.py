#!/usr/bin/env python3
"""How far does a float32-everywhere mel spectrogram drift from the float64 reference?

A naive Accelerate/vDSP port computes every stage in float32: float32
pre-emphasis (``x[n] - 0.97f * x[n-1]``), a float32 window, a float32 FFT, a
float32 magnitude, a float32 filterbank product (float32 accumulation, as
``vDSP_mmul``/``cblas_sgemm``), float32 log10 and scaling. This script runs
that chain in NumPy/SciPy (``scipy.fft.rfft`` keeps float32 input in float32;
``np.dot`` of two float32 arrays is sgemm) and compares the normalized mel
with the float64 reference (tests/reference_mel.py == librosa) on:

- the golden clips of tests/golden (real speech from espeak-ng, tones, chirps),
- the three staged-vector clips (tools/make_stage_vectors.py),
- synthesized speech-like noise (several seeds and levels), white noise, a
  quiet clip and a low tone.

It also runs hybrids that change one thing at a time, to show which stage
dominates: only the pre-emphasis in float32, everything but the pre-emphasis
in float32, only the FFT in float32, and only the final rounding to float32
(the package's default float32 output).

Usage (from the repository root)::

    python tools/make_stage_vectors.py   # if tests/vectors is missing
    python tools/measure_float32.py [--json out.json]

Prints a table of max abs error (and 99.9th percentile) on the normalized mel
(values in [-4, 4]); docs/NUMERICS.md quotes the result.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import scipy.fft
import scipy.signal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import reference_mel as R  # noqa: E402

P = R.Params()
F32 = np.float32


# ----------------------------------------------------------------------------
# configurable chain: each stage in float32 or float64


def chain(
    x: np.ndarray,
    *,
    pre32: bool,
    win32: bool,
    fft32: bool,
    mel32: bool,
    log32: bool,
) -> np.ndarray:
    """The normalized mel (T, 80) with the chosen stages in float32."""
    x = np.asarray(x, dtype=F32)
    # 1. pre-emphasis
    if pre32:
        y = x.copy()
        y[1:] = x[1:] - F32(P.preemphasis) * x[:-1]  # float32 multiply, float32 subtract
    else:
        y = R.preemphasis(x, P.preemphasis)
    # 2-4. pad, frame, window
    dt = F32 if win32 else np.float64
    y = y.astype(dt) if win32 else y.astype(np.float64)
    half = P.n_fft // 2
    y_pad = np.pad(y, half, mode=cast(Any, P.pad_mode))
    T = R.frame_count(len(x), P.hop_length, P.n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(y_pad, P.n_fft)[:: P.hop_length][:T]
    windowed = frames * R.window(P).astype(dt)
    # 5-6. FFT and magnitude
    if fft32:
        spec = scipy.fft.rfft(windowed.astype(F32), axis=-1)
        assert spec.dtype == np.complex64
        mag = np.abs(spec)
    else:
        mag = np.abs(np.fft.rfft(windowed.astype(np.float64), axis=-1))
    # 7. mel
    basis = R.filterbank(P)
    if mel32:
        mel = np.dot(mag.astype(F32), basis.T)  # sgemm, float32 accumulation
        assert mel.dtype == F32
    else:
        mel = np.dot(basis, mag.astype(np.float64).T).T
    # 8-9. dB and normalise
    if log32:
        mel = mel.astype(F32)
        min_level = F32(np.exp(P.min_level_db / 20 * np.log(10)))
        db = F32(20) * np.log10(np.maximum(min_level, mel)) - F32(P.ref_level_db)
        a = F32(P.max_abs_value)
        norm = np.clip(F32(2) * a * ((db - F32(P.min_level_db)) / F32(-P.min_level_db)) - a, -a, a)
        assert norm.dtype == F32
    else:
        mel = mel.astype(np.float64)
        min_level = np.exp(P.min_level_db / 20 * np.log(10))
        db = 20 * np.log10(np.maximum(min_level, mel)) - P.ref_level_db
        a = P.max_abs_value
        norm = np.clip((2 * a) * ((db - P.min_level_db) / (-P.min_level_db)) - a, -a, a)
    return np.asarray(norm, dtype=np.float64)


VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "float32 everywhere": lambda x: chain(
        x, pre32=True, win32=True, fft32=True, mel32=True, log32=True
    ),
    "float32 pre-emphasis only": lambda x: chain(
        x, pre32=True, win32=False, fft32=False, mel32=False, log32=False
    ),
    "float64 pre-emphasis, rest float32": lambda x: chain(
        x, pre32=False, win32=True, fft32=True, mel32=True, log32=True
    ),
    "float32 FFT only": lambda x: chain(
        x, pre32=False, win32=False, fft32=True, mel32=False, log32=False
    ),
    "float64 chain, float32 output": lambda x: R.melspectrogram(x).T.astype(F32).astype(np.float64),
}


# ----------------------------------------------------------------------------
# signals


def speechlike(n: int, seed: int, level: float) -> np.ndarray:
    """Noise shaped like speech: a 1/f-ish spectrum (two-pole low-pass), voiced bursts
    with a 120-200 Hz pulse train, a 4 Hz syllable envelope and short pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    noise = scipy.signal.lfilter([1.0], [1.0, -1.6, 0.64], rng.standard_normal(n))
    f0 = rng.uniform(120, 200) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    pulses = np.sin(2 * np.pi * np.cumsum(f0) / 16000) ** 15
    voiced = scipy.signal.lfilter([1.0], [1.0, -1.2, 0.5], pulses)
    env = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 0.5
    x = (0.4 * noise / np.abs(noise).max() + voiced / np.abs(voiced).max()) * env
    return np.asarray(level * x / np.abs(x).max(), dtype=F32)


def signals() -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "*.npz"))):
        with np.load(path) as npz:
            if "samples" in npz.files:
                out["golden/" + os.path.basename(path)[:-4]] = npz["samples"].astype(F32)
    try:
        import make_stage_vectors as V

        for name, (make, _) in V.CLIPS.items():
            out["vectors/" + name] = make()
    except ImportError:  # pragma: no cover
        pass
    for seed in range(4):
        out[f"speechlike/seed{seed}/level0.5"] = speechlike(48000, seed, 0.5)
    out["speechlike/seed9/level0.05"] = speechlike(48000, 9, 0.05)
    out["speechlike/seed10/level1.0"] = speechlike(48000, 10, 1.0)
    rng = np.random.default_rng(123)
    out["white/0.3"] = (0.3 * rng.standard_normal(32000)).astype(F32)
    out["quiet_speechlike/level0.003"] = speechlike(32000, 11, 0.003)
    t = np.arange(32000) / 16000
    out["tone_100Hz/0.9"] = (0.9 * np.sin(2 * np.pi * 100 * t)).astype(F32)
    return out


#: Reference-level bands for the breakdown of the float32-everywhere error.
LEVELS = [(-4.0, -3.0), (-3.0, -2.0), (-2.0, -1.0), (-1.0, 0.0), (0.0, 4.0)]


def _band(lo: float, hi: float) -> str:
    return f"{'[' if lo <= -4 else '('}{lo:g}, {hi:g}]"


def measure() -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, float]]:
    """Per signal and variant: max, 99.9th percentile and share > 1e-6 of the abs error;
    and, for float32 everywhere over all signals, the max error per reference level band."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    by_level = {_band(lo, hi): 0.0 for lo, hi in LEVELS}
    for name, x in signals().items():
        ref = R.stages(x, P)["normalized"]
        row = {}
        for variant, fn in VARIANTS.items():
            err = np.abs(fn(x) - ref)
            row[variant] = {
                "max": float(err.max()),
                "p999": float(np.quantile(err, 0.999)),
                "frac_gt_1e-6": float((err > 1e-6).mean()),
            }
            if variant == "float32 everywhere":
                for lo, hi in LEVELS:
                    band = (ref > lo) & (ref <= hi) if lo > -4 else (ref <= hi)
                    if band.any():
                        key = _band(lo, hi)
                        by_level[key] = max(by_level[key], float(err[band].max()))
        results[name] = row
    return results, by_level


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    results, by_level = measure()
    variants = list(VARIANTS)
    width = max(len(n) for n in results)
    print("max abs error of the normalized mel vs the float64 reference (99.9th percentile)")
    print(f"{'signal':{width}s} " + " ".join(f"{v[:24]:>24s}" for v in variants))
    for name, row in results.items():
        cells = [f"{row[v]['max']:10.2e} ({row[v]['p999']:8.1e})".rjust(24) for v in variants]
        print(f"{name:{width}s} " + " ".join(cells))
    worst = {v: max(r[v]["max"] for r in results.values()) for v in variants}
    print(f"{'WORST':{width}s} " + " ".join(f"{worst[v]:24.2e}" for v in variants))
    print()
    print("float32 everywhere, max abs error by reference level (all signals):")
    for band, err in by_level.items():
        print(f"  normalized in {band:12s} {err:9.2e}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {"results": results, "worst": worst, "float32_everywhere_by_level": by_level},
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
