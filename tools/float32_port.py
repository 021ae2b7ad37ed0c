#!/usr/bin/env python3
"""A float32 (vDSP-style) port of the ave front end, and what it does to aud_ave.

`float32_stages` computes the ``ave`` stages the way a naive Accelerate port
would: float32 pre-emphasis ``x[n] - 0.97f x[n-1]``, float32 frames and
window, a float32 FFT (``scipy.fft.rfft`` on float32 keeps complex64), float32
magnitude, float32 filterbank product (sgemm), float32 log10 and scaling; then
the same encoder windows, the encoder in ONNX Runtime, aud_ave and the
frames. Its arrays carry the stage names of ``synctalk-audio vectors``, so
`dump` writes a candidate directory for ``synctalk-audio conform``.

``main`` measures, per clip, the max abs difference of aud_ave between that
float32 front end and the float64 reference front end (same encoder, same
runtime), next to the noise the model's runtime itself adds: ONNX Runtime vs
PyTorch float32 and vs PyTorch float64 on the reference windows. Clips: the
golden speech of tests/golden and the 21 s clip of tests/data/modes.

Usage (from the repository root)::

    python tools/float32_port.py --model M.onnx --checkpoint M.pth [--json out.json]
    python tools/float32_port.py --model M.onnx --dump AUDIO OUT_DIR
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import warnings
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F32 = np.float32


def _session(model: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def windows_of(normalized: np.ndarray, fps: float = 25.0) -> np.ndarray:
    """AudDataset's windows of a frame-major (T, 80) mel: (N, 1, 80, 16) float32."""
    frames = normalized.shape[0]
    count = int((frames - 16) / 80.0 * fps) + 2
    out = np.empty((count, 1, 80, 16), dtype=F32)
    for i in range(count):
        start = min(int(80.0 * (i / fps)), frames - 16)
        out[i, 0] = normalized[start : start + 16].T
    return out


def encode(session: Any, windows: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.concatenate(
        [session.run(None, {name: windows[s : s + 64]})[0] for s in range(0, len(windows), 64)]
    ).astype(F32)


def float32_front_end(wav: np.ndarray) -> dict[str, np.ndarray]:
    """The mel stages, every one in float32 (names as ``synctalk-audio vectors``)."""
    import librosa
    import scipy.fft
    import scipy.signal

    x = np.asarray(wav, dtype=F32)
    y = x.copy()
    y[1:] = x[1:] - F32(0.97) * x[:-1]
    window = scipy.signal.get_window("hann", 800, fftbins=True).astype(F32)
    count = 1 + len(y) // 200
    padded = np.pad(y, 400)
    frames = np.ascontiguousarray(
        np.lib.stride_tricks.sliding_window_view(padded, 800)[::200][:count]
    )
    spectrum = scipy.fft.rfft(frames * window, axis=-1)
    assert spectrum.dtype == np.complex64
    magnitude = np.abs(spectrum)
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    mel = np.dot(magnitude, basis.T)
    assert mel.dtype == F32
    db = F32(20) * np.log10(np.maximum(F32(1e-5), mel)) - F32(20)
    normalized = np.clip(F32(8) * ((db + F32(100)) / F32(100)) - F32(4), F32(-4), F32(4))
    return {
        "samples": x,
        "preemphasis": y,
        "stft_frames": frames,
        "window": window,
        "magnitude": magnitude,
        "mel": mel,
        "db": db,
        "normalized": normalized,
    }


def frames_of(aud: np.ndarray, half_window: int = 8) -> np.ndarray:
    count = aud.shape[0]
    out = np.zeros((count, 2 * half_window, aud.shape[1]), F32)
    for i in range(count):
        first = i - half_window
        lo, hi = max(first, 0), min(i + half_window, count)
        out[i, lo - first : hi - first] = aud[lo:hi]
    return out.reshape(count, 32, 16, 16)


def float32_stages(wav: np.ndarray, model: str) -> dict[str, np.ndarray]:
    """Every ave stage with the float32 front end and the encoder in ONNX Runtime."""
    out = float32_front_end(wav)
    out["encoder_windows"] = windows_of(out["normalized"])
    out["encoder_outputs"] = encode(_session(model), out["encoder_windows"])
    o = out["encoder_outputs"]
    out["aud_ave"] = np.concatenate([o[:1], o, o[-1:]])
    out["frames"] = frames_of(out["aud_ave"])
    return out


def dump(audio: str, model: str, out: str) -> None:
    """Write the float32 port's stages of ``audio`` as ``<stage>.npy`` in ``out``."""
    import librosa

    os.makedirs(out, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # audioread imports aifc
        wav = librosa.load(audio, sr=16000)[0]
    for name, array in float32_stages(wav, model).items():
        np.save(os.path.join(out, f"{name}.npy"), array)


def clips() -> dict[str, np.ndarray]:
    """The golden speech clips (16 kHz samples) and the 21 s clip."""
    import soundfile as sf

    out: dict[str, np.ndarray] = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "speech*.npz"))):
        with np.load(path) as npz:
            if "samples" in npz.files:
                out[os.path.basename(path)[:-4]] = npz["samples"].astype(F32)
    long = os.path.join(ROOT, "tests", "data", "modes", "speech_16k_long_21s.wav")
    out["speech_16k_long_21s"] = sf.read(long, dtype="float32")[0]
    return out


def measure(model: str, checkpoint: str | None) -> dict[str, dict[str, float]]:
    """Per clip: aud_ave float32 front end vs float64, and the runtime's own noise."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from reference import upstream

    session = _session(model)
    results: dict[str, dict[str, float]] = {}
    torch_model = None
    if checkpoint:
        import torch

        torch_model = upstream.load_torch_encoder(checkpoint)
        torch64 = upstream.load_torch_encoder(checkpoint).double()
    for name, wav in clips().items():
        if len(wav) < 3000:
            continue
        ref_windows = windows_of(upstream.melspectrogram(wav).T)
        f32_windows = windows_of(float32_front_end(wav)["normalized"])
        ref = encode(session, ref_windows)
        port = encode(session, f32_windows)
        row = {
            "windows": float(len(ref)),
            "mel_max_abs": float(np.abs(f32_windows.astype(np.float64) - ref_windows).max()),
            "aud_ave_max_abs": float(np.abs(port.astype(np.float64) - ref).max()),
            "feature_max_abs": float(np.abs(ref).max()),
            "feature_std": float(ref.std()),
        }
        if torch_model is not None:
            with torch.no_grad():
                t32 = torch_model(torch.from_numpy(ref_windows)).numpy()
                t64 = torch64(torch.from_numpy(ref_windows.astype(np.float64))).numpy()
            row["ort_vs_torch32"] = float(np.abs(ref.astype(np.float64) - t32).max())
            row["ort_vs_torch64"] = float(np.abs(ref.astype(np.float64) - t64).max())
            row["float32_port_vs_torch64"] = float(np.abs(port.astype(np.float64) - t64).max())
        results[name] = row
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--model", required=True, help="the AVE encoder (.onnx)")
    ap.add_argument("--checkpoint", help="its .pth, to measure ONNX Runtime against PyTorch")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--dump", nargs=2, metavar=("AUDIO", "OUT_DIR"), help="write a candidate")
    args = ap.parse_args(argv)
    if args.dump:
        dump(args.dump[0], args.model, args.dump[1])
        print(f"wrote the float32 port's stages of {args.dump[0]} to {args.dump[1]}")
        return 0
    results = measure(args.model, args.checkpoint)
    cols = [
        "mel_max_abs",
        "aud_ave_max_abs",
        "ort_vs_torch32",
        "ort_vs_torch64",
        "float32_port_vs_torch64",
        "feature_std",
    ]
    width = max(len(n) for n in results)
    print(f"{'clip':{width}s} " + " ".join(f"{c:>24s}" for c in cols))
    for name, row in results.items():
        print(f"{name:{width}s} " + " ".join(f"{row.get(c, float('nan')):24.2e}" for c in cols))
    worst = {c: max(r.get(c, float("nan")) for r in results.values()) for c in cols}
    print(f"{'WORST':{width}s} " + " ".join(f"{worst[c]:24.2e}" for c in cols))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"results": results, "worst": worst}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
