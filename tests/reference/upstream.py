#!/usr/bin/env python3
"""The upstream SyncTalk_2D AVE audio path in Python: the reference the project is held to.

This does what SyncTalk_2D's ``utils.py`` and ``inference_328.py`` do, with
the same libraries and the same calls, so its output is what the avatar
model was trained and run with:

1. ``librosa.load(path, sr=16000)``;
2. the wav2lip mel spectrogram: ``scipy.signal.lfilter([1, -0.97], [1], wav)``,
   ``librosa.stft(y, n_fft=800, hop_length=200, win_length=800)`` (pad mode
   ``constant``, librosa >= 0.10's default, or ``reflect``, librosa < 0.10's),
   ``np.dot`` with ``librosa.filters.mel(sr=16000, n_fft=800, n_mels=80,
   fmin=55, fmax=7600)``, ``20 * log10(max(1e-5, x)) - 20``, then
   ``clip(8 * (S + 100) / 100 - 4, -4, 4)``;
3. ``AudDataset``: ``int((M - 16) / 80 * fps) + 2`` windows of 16 mel frames
   starting at ``int(80 * i / fps)`` (clamped to the end), each
   ``torch.FloatTensor(mel.T).unsqueeze(0)``, shape (1, 80, 16);
4. the ``AudioEncoder`` in eval mode under ``torch.no_grad()``, fed by a
   ``DataLoader(batch_size=64, shuffle=False)``; its checkpoint loaded with
   ``{f'audio_encoder.{k}': v}`` exactly as upstream (so it must be in the
   shipped format, without the prefix);
5. ``aud_ave = [o[0], o[0..N-1], o[N-1]]`` (N + 2, 512), and for every video
   frame i the rows i-8 .. i+7 of it, zero outside, reshaped to (32, 16, 16).

``--engine onnx`` swaps step 4 for ONNX Runtime on an exported model, in
batches of 64, without importing PyTorch: the "upstream-style Python peer"
used in the benchmarks. Everything else is the same code.

The output directory has the project's layout: ``aud_ave.npy`` (float32
(N + 2, 512)), ``frames/frame_%05d.bin`` (each ``[uint32 LE 8192][8192 float32
LE]``) and ``metadata.json`` (counts, fps, pad mode, engine, versions,
timings, peak memory).

Usage (from the repository root)::

    python tests/reference/upstream.py --audio speech.wav --checkpoint models/test_encoder.pth \\
        --output out_ref
    python tests/reference/upstream.py --audio speech.wav --engine onnx \\
        --model models/audio_encoder.onnx --output out_ref_onnx

Tests import it: ``from reference import upstream`` (``tests/`` is on the path).
"""

from __future__ import annotations

import argparse
import functools
import glob
import json
import os
import platform
import resource
import struct
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

__all__ = [
    "AudDataset",
    "BATCH_SIZE",
    "Result",
    "compute",
    "encode_onnx",
    "encode_torch",
    "frame_input",
    "get_audio_features",
    "load_torch_encoder",
    "load_wav",
    "main",
    "melspectrogram",
    "num_windows",
    "pad_features",
    "write_output",
]

SAMPLE_RATE = 16000
#: Upstream's DataLoader batch size.
BATCH_SIZE = 64
#: Mel frames per encoder window.
WINDOW = 16
#: Floats per frame file for mode ``ave``: (32, 16, 16).
FRAME_SHAPE = (32, 16, 16)


# ----------------------------------------------------------------------------
# audio and mel: SyncTalk_2D utils.py (wav2lip hparams)


def load_wav(path: str) -> np.ndarray:
    """``librosa.load(path, sr=16000)[0]``: float32 mono at 16 kHz."""
    import librosa

    with warnings.catch_warnings():
        # librosa.load imports audioread, which imports the deprecated aifc module
        warnings.simplefilter("ignore", DeprecationWarning)
        return librosa.load(path, sr=SAMPLE_RATE)[0]


def melspectrogram(wav: np.ndarray, pad_mode: str = "constant") -> np.ndarray:
    """SyncTalk_2D's ``melspectrogram``: (80, T) float64 in [-4, 4].

    Parameters
    ----------
    wav : numpy.ndarray
        Samples at 16 kHz (float32 from `load_wav`).
    pad_mode : {"constant", "reflect"}
        ``librosa.stft``'s centring pad: ``constant`` is librosa >= 0.10's
        default (what ``_stft`` gets without the argument today), ``reflect``
        librosa < 0.10's.
    """
    import librosa
    from scipy import signal

    if pad_mode not in ("constant", "reflect"):
        raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")
    y = signal.lfilter([1, -0.97], [1], wav)
    D = librosa.stft(y=y, n_fft=800, hop_length=200, win_length=800, pad_mode=pad_mode)  # type: ignore[arg-type]
    mel_basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    min_level = np.exp(-5 * np.log(10))
    S = 20 * np.log10(np.maximum(min_level, np.dot(mel_basis, np.abs(D)))) - 20
    # upstream's expression verbatim, ``--100`` included (it is just 100)
    return np.clip((2 * 4.0) * ((S - -100) / (--100)) - 4.0, -4.0, 4.0)  # type: ignore[no-any-return]  # noqa: B002


# ----------------------------------------------------------------------------
# windows: SyncTalk_2D AudDataset


def num_windows(mel_frames: int, fps: float = 25.0) -> int:
    """``int((M - 16) / 80. * float(fps)) + 2``, the AudDataset length."""
    return int((mel_frames - 16) / 80.0 * float(fps)) + 2


class AudDataset:
    """SyncTalk_2D's ``AudDataset`` over an already computed mel.

    Parameters
    ----------
    mel : numpy.ndarray
        (80, M) from `melspectrogram`; kept transposed, (M, 80), as upstream.
    fps : float
        Video frame rate (upstream hard-codes 25).
    tensor : bool
        Return ``torch.FloatTensor`` items (the PyTorch path) instead of
        float32 NumPy arrays (the ONNX path, no PyTorch import). The values
        are the same: both round float64 to float32 to nearest.
    """

    def __init__(self, mel: np.ndarray, fps: float = 25.0, *, tensor: bool = False) -> None:
        self.orig_mel = mel.T
        self.fps = float(fps)
        self.tensor = tensor
        if self.orig_mel.shape[0] < WINDOW:
            raise ValueError(
                f"audio too short: {self.orig_mel.shape[0]} mel frames, the encoder needs at"
                f" least {WINDOW} (about 0.19 s at 16 kHz); upstream SyncTalk_2D crashes here"
            )
        self.data_len = num_windows(self.orig_mel.shape[0], self.fps)

    def crop_audio_window(self, spec: np.ndarray, start_frame: int) -> np.ndarray:
        start_idx = int(80.0 * (start_frame / float(self.fps)))
        end_idx = start_idx + WINDOW
        if end_idx > spec.shape[0]:
            end_idx = spec.shape[0]
            start_idx = end_idx - WINDOW
        return spec[start_idx:end_idx, :]

    def __len__(self) -> int:
        return self.data_len

    def __getitem__(self, idx: int) -> Any:
        if not 0 <= idx < self.data_len:
            raise IndexError(idx)
        # upstream copies the whole mel for every window; kept for a faithful cost
        mel = self.crop_audio_window(self.orig_mel.copy(), idx)
        if mel.shape[0] != WINDOW:
            raise Exception("mel.shape[0] != 16")
        if self.tensor:
            import torch

            return torch.FloatTensor(mel.T).unsqueeze(0)
        return np.asarray(mel.T, dtype=np.float32)[None]


# ----------------------------------------------------------------------------
# encoders


@functools.lru_cache(maxsize=1)
def _audio_encoder_class() -> type:
    """SyncTalk_2D's ``AudioEncoder`` (``utils.py``), defined on first use."""
    import torch.nn as nn

    class Conv2d(nn.Module):
        def __init__(
            self,
            cin: int,
            cout: int,
            kernel_size: Any,
            stride: Any,
            padding: Any,
            residual: bool = False,
        ) -> None:
            super().__init__()
            self.conv_block = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size, stride, padding),
                nn.BatchNorm2d(cout),
            )
            self.act = nn.ReLU()
            self.residual = residual

        def forward(self, x: Any) -> Any:
            out = self.conv_block(x)
            if self.residual:
                out += x
            return self.act(out)

    class AudioEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.audio_encoder = nn.Sequential(
                Conv2d(1, 32, kernel_size=3, stride=1, padding=1),
                Conv2d(32, 32, kernel_size=3, stride=1, padding=1, residual=True),
                Conv2d(32, 32, kernel_size=3, stride=1, padding=1, residual=True),
                Conv2d(32, 64, kernel_size=3, stride=(3, 1), padding=1),
                Conv2d(64, 64, kernel_size=3, stride=1, padding=1, residual=True),
                Conv2d(64, 64, kernel_size=3, stride=1, padding=1, residual=True),
                Conv2d(64, 128, kernel_size=3, stride=3, padding=1),
                Conv2d(128, 128, kernel_size=3, stride=1, padding=1, residual=True),
                Conv2d(128, 128, kernel_size=3, stride=1, padding=1, residual=True),
                Conv2d(128, 256, kernel_size=3, stride=(3, 2), padding=1),
                Conv2d(256, 256, kernel_size=3, stride=1, padding=1, residual=True),
                Conv2d(256, 512, kernel_size=3, stride=1, padding=0),
                Conv2d(512, 512, kernel_size=1, stride=1, padding=0),
            )

        def forward(self, x: Any) -> Any:
            out = self.audio_encoder(x)
            out = out.squeeze(2).squeeze(2)
            return out

    return AudioEncoder


def load_torch_encoder(checkpoint: str) -> Any:
    """``AudioEncoder().eval()`` with ``{f'audio_encoder.{k}': v}`` loaded, as upstream."""
    import torch

    model = _audio_encoder_class()().eval()
    ckpt = torch.load(checkpoint, map_location="cpu")
    model.load_state_dict({f"audio_encoder.{k}": v for k, v in ckpt.items()})
    return model


def encode_torch(
    dataset: AudDataset, checkpoint: str, batch_size: int = BATCH_SIZE, *, exact: bool = False
) -> np.ndarray:
    """The upstream loop: DataLoader(batch_size=64, shuffle=False), no_grad, torch.cat.

    ``exact``: the same model and windows evaluated in float64 (not upstream's
    arithmetic, but the value upstream's float32 arithmetic approximates).
    """
    import torch
    from torch.utils.data import DataLoader

    model = load_torch_encoder(checkpoint)
    if exact:
        model = model.double()
    if not dataset.tensor:
        dataset = AudDataset(dataset.orig_mel.T, dataset.fps, tensor=True)
    data_loader: Any = DataLoader(cast(Any, dataset), batch_size=batch_size, shuffle=False)
    outputs = []
    for mel in data_loader:
        with torch.no_grad():
            out = model(mel.double() if exact else mel)
        outputs.append(out)
    return torch.cat(outputs, dim=0).cpu().numpy()


def encode_onnx(dataset: AudDataset, model_path: str, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The same windows through ONNX Runtime (CPU), ``batch_size`` at a time; no PyTorch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model_path, sess_options=options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    outputs = []
    for start in range(0, len(dataset), batch_size):
        batch = np.stack([dataset[i] for i in range(start, min(len(dataset), start + batch_size))])
        outputs.append(session.run(None, {input_name: batch})[0])
    return np.concatenate(outputs, axis=0).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------
# encoder outputs -> U-Net inputs (inference_328.py)


def pad_features(outputs: np.ndarray) -> np.ndarray:
    """``cat([o[:1], o, o[-1:]])``: the (N + 2, 512) array SyncTalk_2D saves as aud_ave.npy."""
    first_frame, last_frame = outputs[:1], outputs[-1:]
    return np.concatenate([first_frame, outputs, last_frame], axis=0).astype(np.float32)


def get_audio_features(features: np.ndarray, index: int) -> np.ndarray:
    """Rows index-8 .. index+7 of ``features``, zero-padded outside: (16, 512)."""
    left = index - 8
    right = index + 8
    pad_left = 0
    pad_right = 0
    if left < 0:
        pad_left = -left
        left = 0
    if right > features.shape[0]:
        pad_right = right - features.shape[0]
        right = features.shape[0]
    auds = features[left:right]
    if pad_left > 0:
        auds = np.concatenate([np.zeros_like(auds[:pad_left]), auds], axis=0)
    if pad_right > 0:
        auds = np.concatenate([auds, np.zeros_like(auds[:pad_right])], axis=0)
    return auds


def frame_input(features: np.ndarray, index: int) -> np.ndarray:
    """The U-Net's audio input for video frame ``index`` in mode ave: (32, 16, 16)."""
    return get_audio_features(features, index).reshape(*FRAME_SHAPE)


# ----------------------------------------------------------------------------
# the whole path


@dataclass
class Result:
    """Everything `compute` produced."""

    num_samples: int
    mel: np.ndarray  # (80, M) float64
    outputs: np.ndarray  # (N, 512) float32
    aud_ave: np.ndarray  # (N + 2, 512) float32
    fps: float
    pad_mode: str
    engine: str
    model: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "samples": self.num_samples,
            "mel_frames": int(self.mel.shape[1]),
            "windows": int(self.outputs.shape[0]),
            "frames": int(self.aud_ave.shape[0]),
        }


def compute(
    audio: str | np.ndarray,
    *,
    engine: str = "torch",
    checkpoint: str | None = None,
    model: str | None = None,
    fps: float = 25.0,
    pad_mode: str = "constant",
    batch_size: int = BATCH_SIZE,
    exact: bool = False,
) -> Result:
    """Audio file (or 16 kHz samples) → mel → windows → encoder → aud_ave.

    Parameters
    ----------
    audio : str or numpy.ndarray
        A file for ``librosa.load(path, sr=16000)``, or float32 16 kHz samples.
    engine : {"torch", "onnx"}
        PyTorch with ``checkpoint`` (upstream), or ONNX Runtime with ``model``.
    checkpoint : str, optional
        SyncTalk_2D-format ``.pth`` (keys without ``audio_encoder.``), for torch.
    model : str, optional
        Exported ONNX encoder, for onnx.
    fps, pad_mode, batch_size
        Video frame rate, STFT pad mode, encoder batch size.
    exact : bool
        With torch: evaluate the encoder in float64 (see `encode_torch`).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    wav = load_wav(audio) if isinstance(audio, str) else np.asarray(audio, dtype=np.float32)
    t1 = time.perf_counter()
    mel = melspectrogram(wav, pad_mode)
    t2 = time.perf_counter()
    if engine == "torch":
        if not checkpoint:
            raise ValueError("engine 'torch' needs a checkpoint (.pth)")
        dataset = AudDataset(mel, fps, tensor=True)
        outputs = encode_torch(dataset, checkpoint, batch_size, exact=exact)
        source = checkpoint
    elif engine == "onnx":
        if not model:
            raise ValueError("engine 'onnx' needs a model (.onnx)")
        dataset = AudDataset(mel, fps)
        outputs = encode_onnx(dataset, model, batch_size)
        source = model
    else:
        raise ValueError(f"engine must be 'torch' or 'onnx', got {engine!r}")
    t3 = time.perf_counter()
    aud_ave = pad_features(outputs)
    timings.update(
        load_s=t1 - t0, mel_s=t2 - t1, encode_s=t3 - t2, total_s=time.perf_counter() - t0
    )
    return Result(
        len(wav),
        mel,
        outputs,
        aud_ave,
        float(fps),
        pad_mode,
        engine,
        os.path.abspath(source),
        timings,
    )


def _versions(engine: str) -> dict[str, str]:
    import librosa
    import scipy

    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "librosa": getattr(librosa, "__version__", "?"),
        "scipy": getattr(scipy, "__version__", "?"),
    }
    if engine == "torch":
        import torch

        out["torch"] = torch.__version__
    else:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    return out


def write_output(
    result: Result, directory: str, *, frames: bool = True, extra: dict[str, Any] | None = None
) -> None:
    """aud_ave.npy, frames/frame_%05d.bin and metadata.json into ``directory``."""
    t0 = time.perf_counter()
    os.makedirs(directory, exist_ok=True)
    np.save(os.path.join(directory, "aud_ave.npy"), result.aud_ave.astype("<f4"))
    frame_dir = os.path.join(directory, "frames")
    os.makedirs(frame_dir, exist_ok=True)
    for stale in glob.glob(os.path.join(frame_dir, "frame_*.bin")):
        os.remove(stale)
    if frames:
        header = struct.pack("<I", int(np.prod(FRAME_SHAPE)))
        for index in range(result.aud_ave.shape[0]):
            data = np.ascontiguousarray(frame_input(result.aud_ave, index), dtype="<f4")
            with open(os.path.join(frame_dir, f"frame_{index:05d}.bin"), "wb") as f:
                f.write(header)
                f.write(data.tobytes())
    result.timings["write_s"] = time.perf_counter() - t0
    metadata: dict[str, Any] = {
        "reference": "upstream SyncTalk_2D path (tests/reference/upstream.py)",
        "mode": "ave",
        "engine": result.engine,
        "model": result.model,
        "fps": result.fps,
        "pad_mode": result.pad_mode,
        "batch_size": BATCH_SIZE,
        "counts": result.counts,
        "frame_shape": list(FRAME_SHAPE),
        "versions": _versions(result.engine),
        "timings": {k: round(v, 6) for k, v in result.timings.items()},
        # Linux reports KiB
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    metadata.update(extra or {})
    with open(os.path.join(directory, "metadata.json"), "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The upstream SyncTalk_2D AVE audio path (librosa + PyTorch, or ONNX Runtime)"
        " writing aud_ave.npy, frames/frame_%%05d.bin and metadata.json.",
    )
    parser.add_argument("--audio", required=True, help="input audio file")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--checkpoint", help="SyncTalk_2D-format .pth (engine torch)")
    parser.add_argument("--engine", choices=("torch", "onnx"), default="torch")
    parser.add_argument("--model", help="exported ONNX encoder (engine onnx)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--pad-mode", choices=("constant", "reflect"), default="constant")
    parser.add_argument("--no-frames", action="store_true", help="skip the per-frame files")
    args = parser.parse_args(argv)
    if args.engine == "torch" and not args.checkpoint:
        parser.error("--engine torch needs --checkpoint")
    if args.engine == "onnx" and not args.model:
        parser.error("--engine onnx needs --model")
    started = time.perf_counter()
    result = compute(
        args.audio,
        engine=args.engine,
        checkpoint=args.checkpoint,
        model=args.model,
        fps=args.fps,
        pad_mode=args.pad_mode,
    )
    write_output(
        result, args.output, frames=not args.no_frames, extra={"input": os.path.abspath(args.audio)}
    )
    counts = result.counts
    print(
        f"{args.audio}: {counts['samples']} samples, {counts['mel_frames']} mel frames,"
        f" {counts['windows']} windows, {counts['frames']} frames ({args.engine}) in"
        f" {time.perf_counter() - started:.2f} s -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
