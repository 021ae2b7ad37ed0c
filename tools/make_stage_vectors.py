#!/usr/bin/env python3
"""Write staged test vectors of the mel spectrogram for a port (iOS: Swift/Accelerate).

For three short, deterministic, synthesized clips this writes the output of
EVERY stage of the mel spectrogram (docs/NUMERICS.md section 2) as computed
by the NumPy/scipy/librosa reference (tests/reference_mel.py; not by this
project's C++ core), as
little-endian .npy files, plus ``index.json`` describing each file: shape,
dtype, meaning, which frames it holds and the tolerance a port must meet.
docs/NUMERICS.md explains how to use them.

Usage (from the repository root)::

    python tools/make_stage_vectors.py                # writes tests/vectors/
    python tools/make_stage_vectors.py --out DIR
    python tools/make_stage_vectors.py --check        # compare with what is on disk

The output is deterministic (fixed seeds, fixed formulas) on one machine, but
not bit for bit across CPUs: NumPy picks its SIMD kernels (log10, complex
abs, ...) and OpenBLAS its matrix kernels by CPU at run time, so a fresh run
elsewhere can differ in the last bits (measured: up to 4 ulps of an array's
largest value, and up to 4e-12 dB in the dB of quiet bands where libm's sin/cos
in the FFT twiddles round differently). ``--check`` therefore accepts float64
arrays within ``tolerances.regenerated_tolerance`` (32 ulps of the array's
largest value or 1% of the stage's port tolerance, whichever is larger) and
float32 arrays within one float32 ulp per value, and says which files are
bitwise identical. tests/test_stage_vectors.py checks the C++ core against these
vectors and runs the same check.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import reference_mel as R  # noqa: E402
import tolerances  # noqa: E402

FORMAT = "synctalk-stage-vectors/1"
#: What index.json names as the source of the vectors (written there verbatim).
REFERENCE = (
    "tests/reference_mel.py: NumPy/scipy/librosa transcription of SyncTalk_2D utils/audio.py"
    " melspectrogram (wav2lip audio.py), stage by stage as in docs/NUMERICS.md section 2"
)
SR = 16000
PARAMS = R.Params()  # SyncTalk_2D's hparams, pad_mode "constant"

# ----------------------------------------------------------------------------
# the clips


def clip_chirp() -> np.ndarray:
    """0.25 s linear chirp 100 Hz -> 7000 Hz at amplitude 0.5 (4000 samples)."""
    n = 4000
    t = np.arange(n) / SR
    f0, f1, dur = 100.0, 7000.0, n / SR
    phase = 2 * np.pi * (f0 * t + (f1 - f0) / (2 * dur) * t * t)
    return (0.5 * np.sin(phase)).astype(np.float32)


def clip_noise_tone_loud_start() -> np.ndarray:
    """0.5 s: 0.8 cos(2 pi 440 t) + 0.15 Gaussian noise (seed 20240601), loud from
    sample 0 (x[0] ~ 0.8), clipped to [-1, 1] (8000 samples)."""
    n = 8000
    rng = np.random.default_rng(20240601)
    t = np.arange(n) / SR
    x = 0.8 * np.cos(2 * np.pi * 440 * t) + 0.15 * rng.standard_normal(n)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def clip_silent_start() -> np.ndarray:
    """~0.3 s (4837 samples, NOT a multiple of the hop): 1600 exact zeros (0.1 s),
    then a 220 Hz tone with 3 harmonics plus low-passed noise (seed 7) under a
    20 ms fade-in, peak ~0.6."""
    n, silent = 4837, 1600
    rng = np.random.default_rng(7)
    t = np.arange(n - silent) / SR
    tone = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in (1, 2, 3, 4))
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(4) / 4, mode="same") * 0.1
    fade = np.minimum(1.0, t / 0.02)
    x = np.concatenate([np.zeros(silent), (tone + noise) * fade])
    return x.astype(np.float32)


CLIPS = {
    "chirp_0p25s": (clip_chirp, clip_chirp.__doc__),
    "noise_tone_loud_start_0p5s": (clip_noise_tone_loud_start, clip_noise_tone_loud_start.__doc__),
    "silent_start_0p3s": (clip_silent_start, clip_silent_start.__doc__),
}

# ----------------------------------------------------------------------------
# stages and tolerances

STAGE_DOC = {
    "input": "the clip's samples as a port receives them (float32, 16 kHz mono)",
    "preemphasis": "y[0] = x[0]; y[n] = x[n] - 0.97 * x[n-1], in float64"
    " (= scipy lfilter([1, -0.97], [1], x))",
    "frames": "frame k = y_pad[200k : 200k + 800], y_pad = zero-pad y by 400 each side"
    " (raw, before the window)",
    "windowed": "frames * window (periodic Hann, float64)",
    "spectrum": "rfft of each windowed frame, 401 bins,"
    " stored as float64 [..., 0] = re, [..., 1] = im",
    "magnitude": "|spectrum| = sqrt(re^2 + im^2) (np.abs), float64",
    "mel": "filterbank (float32 weights, widened) . magnitude, summed in float64",
    "db": "20 * log10(max(min_level, mel)) - 20,"
    " min_level = exp(-5 * ln 10) = 9.99999999999998e-06 (not the literal 1e-5)",
    "normalized": "clip(8 * ((db + 100) / 100) - 4, -4, 4): the mel spectrogram,"
    " frame-major (T, 80); "
    "the package returns its transpose (80, T)",
    "normalized_reflect_edges": "the normalized frames [0, 1, T-2, T-1] with pad_mode='reflect' "
    "(librosa < 0.10); every other frame equals the constant-pad one",
}

# Tolerances for a float64 port (the C++ core meets them with a wide margin;
# docs/NUMERICS.md lists its measured errors). "abs": max |port - vector| <= value.
ABS_SAMPLE = 1e-15  # one float64 rounding of values <= 2 (FMA allowed)
REL_SPECTRAL = 1e-12  # x the clip's largest |X| (or mel scale)
ABS_DB = 1.25e-8  # = ABS_NORMALIZED / 0.08 (normalized = 0.08 db + 4)
ABS_NORMALIZED = 1e-9
ABS_NORMALIZED_F32_OUTPUT = 1e-6
#: What a float32-everywhere port can be held to: tools/measure_float32.py measured
#: up to 1.2e-4 on these clips and 1.4e-4 on the golden speech (about 2x margin).
#: Not parity (the encoder was trained on float64 features); listed so such a
#: port knows where it stands.
ABS_NORMALIZED_F32_PORT = 3e-4


def _selected_frames(num_frames: int) -> list[int]:
    """First 3, the middle one, last 3: both padded edges and an interior frame."""
    picks = [0, 1, 2, num_frames // 2, num_frames - 3, num_frames - 2, num_frames - 1]
    return sorted({k for k in picks if 0 <= k < num_frames})


def _le(a: np.ndarray) -> np.ndarray:
    """Little-endian, C-contiguous copy."""
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<")))


def build() -> dict[str, Any]:
    """All arrays and the index, in memory: {"index": ..., "arrays": {relpath: array}}."""

    arrays: dict[str, np.ndarray] = {}
    window = R.window(PARAMS)
    basis = R.filterbank(PARAMS)
    arrays["window.npy"] = _le(window)
    arrays["filterbank.npy"] = _le(basis)
    row_sum_max = float(basis.astype(np.float64).sum(axis=1).max())
    index: dict[str, Any] = {
        "format": FORMAT,
        "generator": "tools/make_stage_vectors.py",
        "reference": REFERENCE,
        "versions": {
            "numpy": np.__version__,
            "scipy": importlib.metadata.version("scipy"),
            "librosa": importlib.metadata.version("librosa"),
            "python": platform.python_version(),
        },
        "params": {k: getattr(PARAMS, k) for k in PARAMS.__dataclass_fields__},
        "conventions": {
            "files": ".npy version 1.0, little-endian, C order; paths relative to index.json",
            "layout": "frame-major: (T, n_fft), (T, 401), (T, 80); T = 1 + num_samples // 200",
            "spectrum": "float64 (F, 401, 2): [..., 0] real, [..., 1] imaginary part",
            "frames": "'frames' lists the frame numbers a partial array holds, row by row",
            "tolerance": "max |port - vector| over the array must be <= tolerance.abs;"
            " 'rule' says where"
            " the number comes from; 'exact' means bitwise equal",
        },
        "shared": {
            "window": {
                "file": "window.npy",
                "shape": list(window.shape),
                "dtype": "float64",
                "description": "scipy.signal.get_window('hann', 800):"
                " (0.5 + 0.5 cos(linspace(-pi, pi, 801)))[:800]",
                "tolerance": {
                    "abs": ABS_SAMPLE,
                    "rule": "cos rounding; the reference core is exact",
                },
            },
            "filterbank": {
                "file": "filterbank.npy",
                "shape": list(basis.shape),
                "dtype": "float32",
                "description": "librosa.filters.mel(sr=16000, n_fft=800, n_mels=80,"
                " fmin=55, fmax=7600)"
                " (Slaney scale and norm, float32)",
                "tolerance": {
                    "abs": 0.0,
                    "exact": True,
                    "rule": "embed this array or reproduce librosa's double rounding"
                    " float32(float64(float32(triangle)) * enorm) exactly; one float32 ulp"
                    " off moves normalized values by up to ~4e-8",
                },
                "max_row_sum": row_sum_max,
            },
        },
        "clips": [],
    }

    for name, (make, doc) in CLIPS.items():
        x = make()
        st = R.stages(x, PARAMS)
        refl = R.stages(x, R.Params(pad_mode="reflect"))["normalized"]
        T = st["normalized"].shape[0]
        sel = _selected_frames(T)
        edges = sorted({0, 1, T - 2, T - 1} & set(range(T)))
        spec_scale = float(np.abs(st["spectrum"]).max())
        mag_scale = float(st["magnitude"].max())
        mel_scale = max(float(st["mel"].max()), mag_scale * row_sum_max)
        stored = {
            "input": (x, "all", {"abs": 0.0, "exact": True, "rule": "the input"}),
            "preemphasis": (
                st["preemphasis"],
                "all",
                {"abs": ABS_SAMPLE, "rule": "one rounding; the reference core is exact"},
            ),
            "frames": (
                st["frames"][sel],
                sel,
                {"abs": ABS_SAMPLE, "rule": "copies of preemphasis values or 0"},
            ),
            "windowed": (
                st["windowed"][sel],
                sel,
                {"abs": ABS_SAMPLE, "rule": "one product; the reference core is exact"},
            ),
            "spectrum": (
                np.stack([st["spectrum"][sel].real, st["spectrum"][sel].imag], axis=-1),
                sel,
                {
                    "abs": REL_SPECTRAL * spec_scale,
                    "rule": f"{REL_SPECTRAL:g} x max |X| of the clip ({spec_scale:.17g})",
                },
            ),
            "magnitude": (
                st["magnitude"],
                "all",
                {
                    "abs": REL_SPECTRAL * mag_scale,
                    "rule": f"{REL_SPECTRAL:g} x max |X| of the clip ({mag_scale:.17g})",
                },
            ),
            "mel": (
                st["mel"],
                "all",
                {
                    "abs": REL_SPECTRAL * mel_scale,
                    "rule": f"{REL_SPECTRAL:g} x max(max mel, max |X| x max filter row sum)"
                    f" ({mel_scale:.17g})",
                },
            ),
            "db": (
                st["db"],
                "all",
                {"abs": ABS_DB, "rule": "the normalized budget 1e-9 / 0.08 (dB)"},
            ),
            "normalized": (
                st["normalized"],
                "all",
                {
                    "abs": ABS_NORMALIZED,
                    "rule": "float64 output parity with librosa",
                    "abs_float32_output": ABS_NORMALIZED_F32_OUTPUT,
                    "abs_float32_everywhere_port": ABS_NORMALIZED_F32_PORT,
                },
            ),
            "normalized_reflect_edges": (
                refl[edges],
                edges,
                {"abs": ABS_NORMALIZED, "rule": "as normalized"},
            ),
        }
        clip_index: dict[str, Any] = {
            "name": name,
            "description": " ".join((doc or "").split()),
            "sample_rate": SR,
            "num_samples": int(len(x)),
            "num_frames": int(T),
            "stored_frames": sel,
            "reflect_edge_frames": edges,
            "stages": {},
        }
        for stage, (arr, frames, tol) in stored.items():
            rel = f"{name}/{stage}.npy"
            arr = _le(np.asarray(arr))
            arrays[rel] = arr
            clip_index["stages"][stage] = {
                "file": rel,
                "shape": list(arr.shape),
                "dtype": arr.dtype.name,
                "frames": frames,
                "description": STAGE_DOC[stage],
                "tolerance": tol,
            }
        index["clips"].append(clip_index)
    return {"index": index, "arrays": arrays}


def write(out: str) -> int:
    built = build()
    total = 0
    for rel, arr in built["arrays"].items():
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, arr, allow_pickle=False)
        total += os.path.getsize(path)
    with open(os.path.join(out, "index.json"), "w", encoding="utf-8") as f:
        json.dump(built["index"], f, indent=2)
        f.write("\n")
    total += os.path.getsize(os.path.join(out, "index.json"))
    return total


def compare(out: str) -> list[tuple[str, str, float]]:
    """Each file of a fresh build against ``out``: ``(relpath, status, ulps)``.

    ``status`` is "identical" (bitwise), "within" (the cross-CPU tolerance:
    float64 arrays within ``tolerances.regenerated_tolerance`` of the stage's port
    tolerance, float32 arrays within ``tolerances.FLOAT32_ROUNDING_ULPS`` ulp of
    each value), "differs", or "missing" / "dtype or shape differs". ``ulps`` is
    the difference in ulps (of the array's largest |value|; of each value for
    float32 arrays).
    """
    built = build()
    index = built["index"]
    port_abs = {entry["file"]: entry["tolerance"]["abs"] for entry in index["shared"].values()}
    for clip in index["clips"]:
        port_abs.update({e["file"]: e["tolerance"]["abs"] for e in clip["stages"].values()})
    rows: list[tuple[str, str, float]] = []
    for rel, arr in built["arrays"].items():
        path = os.path.join(out, rel)
        if not os.path.exists(path):
            rows.append((rel, "missing", float("inf")))
            continue
        disk = np.load(path, allow_pickle=False)
        if disk.dtype != arr.dtype or disk.shape != arr.shape:
            rows.append((rel, "dtype or shape differs", float("inf")))
            continue
        if np.array_equal(disk, arr):
            rows.append((rel, "identical", 0.0))
            continue
        if arr.dtype == np.float32:
            ulps = tolerances.ulps_elementwise(arr, disk)
            ok = ulps <= tolerances.FLOAT32_ROUNDING_ULPS
        else:
            ulps = tolerances.ulps_of_scale(arr, disk)
            allowed = tolerances.regenerated_tolerance(disk, port_abs[rel])
            ok = tolerances.max_abs_diff(arr, disk) <= allowed
        rows.append((rel, "within" if ok else "differs", ulps))
    return rows


def check(out: str) -> list[str]:
    """Files in ``out`` that a fresh build does not reproduce within the
    cross-CPU tolerance (empty: up to date); see `compare`."""
    return [
        f"{rel}: {status} from a fresh run of the reference"
        + (f" ({ulps:.3g} ulps)" if status == "differs" else "")
        for rel, status, ulps in compare(out)
        if status not in ("identical", "within")
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument(
        "--out",
        default=os.path.join(ROOT, "tests", "vectors"),
        help="output directory (default: tests/vectors)",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the vectors on disk differ from a fresh run"
        " (beyond the last-bit differences between CPUs)",
    )
    args = ap.parse_args(argv)
    if args.check:
        rows = compare(args.out)
        for rel, status, ulps in rows:
            if status != "identical":
                print(f"{rel}: {status}" + (f" ({ulps:.3g} ulps)" if ulps != float("inf") else ""))
        bad = [r for r in rows if r[1] not in ("identical", "within")]
        same = sum(r[1] == "identical" for r in rows)
        if bad:
            print(f"{len(bad)} file(s) differ")
        elif same == len(rows):
            print(f"up to date (all {same} files bitwise identical)")
        else:
            print(
                f"up to date ({same} of {len(rows)} files bitwise identical, the others"
                " within the cross-CPU tolerance)"
            )
        return 1 if bad else 0
    total = write(args.out)
    print(f"wrote {args.out}: {total / 1e6:.3f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
