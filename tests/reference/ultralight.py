#!/usr/bin/env python3
"""Ultralight-Digital-Human's ``hubert`` and ``wenet`` audio features in Python: the references.

What users train SyncTalk_2D / Ultralight-Digital-Human on with ``--asr
hubert`` or ``--asr wenet`` comes from two upstream scripts of
anliyuan/Ultralight-Digital-Human: ``data_utils/hubert.py`` (``aud_hu.npy``)
and ``data_utils/wenet_infer.py`` with ``data_utils/FeaturePipeline.py``
(``aud_wenet.npy``). This module does what they do, step by step, with the
same libraries and calls (written anew from a reading of them), so its output
is what those models were trained on. Where upstream is wrong in a way no
user can rely on, the fix is applied and marked **FIX** below.

hubert (``hubert_features``, upstream ``main`` + ``get_hubert_from_16k_speech``):

1. ``soundfile.read(path)``: float64, (L,) or (L, C).
2. **FIX**: keep the first channel ``[:, 0]`` BEFORE resampling. Upstream
   calls ``librosa.resample`` on the 2-D array first; librosa resamples
   along the last axis, i.e. across the channels, which turns a stereo file
   at another rate into garbage (for a 16 kHz stereo file the order does not
   matter: resampling to the same rate returns the input).
3. ``librosa.resample(x, orig_sr=sr, target_sr=16000)``: soxr 'HQ' on
   float64, length ``ceil(n * 16000 / sr)``; the input itself when sr is
   16000.
4. ``Wav2Vec2Processor(...)(x, return_tensors="pt", sampling_rate=16000)
   .input_values``: cast to float32, then ``(x - mean) / sqrt(var + 1e-7)``
   over the whole clip in float32. The processor hands audio to its
   ``Wav2Vec2FeatureExtractor``, which is what is called here (it needs only
   ``preprocessor_config.json``).
5. ``HubertModel.from_pretrained(dir)`` (eval mode, float32, CPU) under
   ``torch.no_grad()``: ``last_hidden_state`` of pieces of the normalised
   clip, L samples: piece i < ``L // 320000`` is ``[320000 i, 320000 i +
   320080)`` (1000 frames), then the remainder ``[320000 * (L // 320000),
   L)`` if it has at least 400 samples. Rows concatenated, then cut or
   zero-padded to ``T = (L - 80) // 320`` rows (upstream asserts they differ
   by at most 1; with HuBERT's convolution arithmetic they never differ).
6. Odd T: the current upstream appends one zero row (``make_even_first_dim``);
   up to mid-2025 (commit ff0454d) it dropped the last row instead
   (``pad_odd=False``). Then ``reshape(-1, 2, 1024)``: ``aud_hu.npy``.

wenet (``wenet_features``, upstream ``wenet_infer.py`` ``__main__``):

1. ``soundfile.read(path)``: float64; if 2-D keep ``[:, 0]``.
2. **FIX**: upstream ignores the sample rate (the model expects 16 kHz);
   other rates are resampled here with ``librosa.resample`` (soxr 'HQ' on
   the float64 first channel), as for hubert.
3. ``(x.astype(float32) * 32767).astype(int16)``: float32 product, then a
   truncating cast (a PCM_16 sample v comes back as v - sign(v)). **FIX**:
   values beyond the int16 range (float files above full scale) wrap around
   or are undefined in that cast; they are clipped to [-32768, 32767] first.
4. 32 * 160 zeros before, 35 * 160 zeros after (``np.concatenate``: float64),
   ``torch.from_numpy(...).float().unsqueeze(0)``.
5. ``torchaudio.compliance.kaldi.fbank(wave, num_mel_bins=80,
   frame_length=25, frame_shift=10, dither=0, energy_floor=0.0,
   sample_frequency=16000)``, float32: F frames of 80.
6. ``start = 0; end = 0; while end < F: end = start + 67; chunk =
   feat[start:end]`` zero-padded (0.0) to 67 rows, ``start += 5``: K = 1 +
   max(0, (F - 63) // 5) chunks, each fed as (1, 1, 67, 80) float32 to the
   encoder with ``offset`` [100] int64 and zero ``att_cache`` (3, 8, 16, 128)
   and ``cnn_cache`` (3, 1, 512, 14), never carried over; ``outs[0][0]`` is
   one (16, 512) row. ``aud_wenet.npy`` is (K, 16, 512) float32, 20 rows a
   second.

Per-frame windows (``frame_window``): rows i - h .. i + h - 1 of the feature
array, rows outside it zero, reshaped C-order (h = 8: SyncTalk_2D, h = 4:
Ultralight-Digital-Human; see ``FRAME_SHAPES``). Upstream's
``gather_audio_window`` builds its padding with ``zeros_like(auds[:pad])``,
which is too short when the array has fewer than h rows; here the padding is
what it is meant to be.

torchaudio: the PyPI torchaudio wheels for recent PyTorch are CUDA builds
that do not load with a CPU-only torch (and installing one breaks
``transformers``' HubertModel import). Its ``compliance/kaldi.py`` is plain
PyTorch code, so `load_torchaudio_kaldi` runs only that file, read from the
torchaudio wheel, with a stand-in ``torchaudio`` module present while it is
imported (kaldi.py uses torchaudio only for ``mfcc``'s DCT, which is not
needed). The wheel is ``torchaudio==TORCHAUDIO_VERSION``: found in
``$SYNCTALK_TORCHAUDIO_WHEEL_DIR`` (default
``~/.cache/synctalk-audio/wheels``), else fetched there once with ``pip
download --no-deps``. ``$SYNCTALK_TORCHAUDIO_KALDI`` may instead name a
``kaldi.py`` file to use.

Usage (from the repository root)::

    python tests/reference/ultralight.py hubert --audio speech.wav \\
        --checkpoint models/test_hubert --output aud_hu.npy [--drop-odd]
    python tests/reference/ultralight.py wenet --audio speech.wav \\
        --model models/test_wenet_encoder.onnx --output aud_wenet.npy

Tests import it: ``from reference import ultralight`` (``tests/`` is on the path).
"""

from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import importlib.util
import os
import subprocess
import sys
import time
import types
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "FRAME_SHAPES",
    "HALF_WINDOWS",
    "ROW_SHAPES",
    "TORCHAUDIO_VERSION",
    "frame_window",
    "hubert_features",
    "hubert_hidden",
    "kaldi_source",
    "load_hubert",
    "load_torchaudio_kaldi",
    "main",
    "read_first_channel_16k",
    "torchaudio_fbank",
    "wenet_chunks",
    "wenet_count",
    "wenet_encode",
    "wenet_fbank",
    "wenet_features",
    "wenet_waveform",
]

SAMPLE_RATE = 16000

# hubert.py
HUBERT_KERNEL = 400  # receptive field of the convolutional feature extractor
HUBERT_STRIDE = 320
HUBERT_CLIP = HUBERT_STRIDE * 1000  # 320000: start-to-start distance of the 20 s pieces
HUBERT_PIECE = HUBERT_CLIP - HUBERT_STRIDE + HUBERT_KERNEL  # 320080 samples, 1000 frames
HUBERT_WIDTH = 1024

# wenet_infer.py
WENET_PAD_BEFORE = 32 * 160
WENET_PAD_AFTER = 35 * 160
WENET_CHUNK = 67  # frames_stride: fbank frames per encoder call
WENET_STEP = 5  # fbank frames between chunks: 50 ms, one 20 fps video frame
WENET_OFFSET = 100
FBANK_ARGS: dict[str, Any] = {
    "num_mel_bins": 80,
    "frame_length": 25,
    "frame_shift": 10,
    "dither": 0,
    "energy_floor": 0.0,
    "sample_frequency": 16000,
}

#: Row shape of each mode's feature array.
ROW_SHAPES: dict[str, tuple[int, ...]] = {"ave": (512,), "hubert": (2, 1024), "wenet": (16, 512)}
#: The half-windows each lineage uses: SyncTalk_2D 8, Ultralight-Digital-Human 4.
HALF_WINDOWS = (8, 4)
#: U-Net audio input shape per (mode, half-window h): 2h rows reshaped C-order.
FRAME_SHAPES: dict[tuple[str, int], tuple[int, ...]] = {
    ("ave", 8): (32, 16, 16),
    ("hubert", 8): (32, 32, 32),
    ("hubert", 4): (16, 32, 32),
    ("wenet", 8): (256, 16, 32),
    ("wenet", 4): (128, 16, 32),
}

TORCHAUDIO_VERSION = "2.11.0"
KALDI_MEMBER = "torchaudio/compliance/kaldi.py"


# ----------------------------------------------------------------------------
# torchaudio.compliance.kaldi without torchaudio


class _TorchaudioStandIn(types.ModuleType):
    """What ``import torchaudio`` finds while kaldi.py is being imported."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"torchaudio.{name} is not available: only torchaudio/compliance/kaldi.py is loaded"
            " (tests/reference/ultralight.py), enough for fbank"
        )


def _wheel_dir() -> str:
    default = os.path.join(os.path.expanduser("~"), ".cache", "synctalk-audio", "wheels")
    return os.environ.get("SYNCTALK_TORCHAUDIO_WHEEL_DIR", default)


def _find_or_fetch_wheel() -> str:
    folder = _wheel_dir()
    pattern = os.path.join(folder, f"torchaudio-{TORCHAUDIO_VERSION}-*.whl")
    found = sorted(glob.glob(pattern))
    if not found:
        os.makedirs(folder, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            f"torchaudio=={TORCHAUDIO_VERSION}",
            "-d",
            folder,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        found = sorted(glob.glob(pattern))
        if done.returncode != 0 or not found:
            raise RuntimeError(
                f"could not get torchaudio {TORCHAUDIO_VERSION} into {folder}"
                f" ({' '.join(command)}): {done.stderr.strip()[-500:]}"
            )
    return found[-1]


@functools.lru_cache(maxsize=1)
def kaldi_source() -> tuple[str, str]:
    """(source text of torchaudio's compliance/kaldi.py, where it came from)."""
    explicit = os.environ.get("SYNCTALK_TORCHAUDIO_KALDI")
    if explicit:
        with open(explicit, encoding="utf-8") as f:
            return f.read(), explicit
    wheel = _find_or_fetch_wheel()
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(KALDI_MEMBER).decode("utf-8"), f"{wheel}!{KALDI_MEMBER}"


@functools.lru_cache(maxsize=1)
def load_torchaudio_kaldi() -> types.ModuleType:
    """torchaudio's ``compliance.kaldi`` as a module, loaded from its source alone."""
    import torch  # noqa: F401  (imported before the stand-in exists: torch looks at sys.modules)

    source, origin = kaldi_source()
    spec = importlib.util.spec_from_loader("_ultralight_torchaudio_kaldi", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = origin
    saved = sys.modules.get("torchaudio")
    sys.modules["torchaudio"] = _TorchaudioStandIn("torchaudio")
    try:
        exec(compile(source, origin, "exec"), module.__dict__)
    finally:
        if saved is None:
            del sys.modules["torchaudio"]
        else:
            sys.modules["torchaudio"] = saved
    return module


def torchaudio_fbank(wave: Any, dtype: Any = None) -> np.ndarray:
    """``kaldi.fbank(wave, **FBANK_ARGS)`` as upstream calls it: (F, 80).

    Parameters
    ----------
    wave : numpy.ndarray or torch.Tensor
        The padded int16-valued waveform, (N,) or (1, N).
    dtype : torch.dtype, optional
        ``torch.float32`` (upstream, the default) or ``torch.float64``.
    """
    import torch

    kaldi = load_torchaudio_kaldi()
    dtype = torch.float32 if dtype is None else dtype
    tensor = torch.as_tensor(np.asarray(wave)).to(dtype)
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    return kaldi.fbank(tensor, **FBANK_ARGS).numpy()  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------
# loading


def read_first_channel_16k(path: str) -> tuple[np.ndarray, int]:
    """``soundfile.read`` (float64), first channel, resampled to 16 kHz (soxr HQ).

    Returns the float64 samples and the file's own rate. For hubert this is
    upstream's loading with the channel taken before resampling (FIX); for
    wenet, upstream's loading plus the resampling it lacks (FIX).
    """
    import librosa
    import soundfile as sf

    speech, rate = sf.read(path)
    if speech.ndim == 2:
        speech = speech[:, 0]
    if rate != SAMPLE_RATE:
        speech = librosa.resample(speech, orig_sr=rate, target_sr=SAMPLE_RATE)
    return np.asarray(speech, dtype=np.float64), int(rate)


# ----------------------------------------------------------------------------
# hubert


@functools.lru_cache(maxsize=2)
def load_hubert(checkpoint_dir: str) -> tuple[Any, Any]:
    """(HubertModel in eval mode, Wav2Vec2FeatureExtractor) from a checkpoint directory."""
    from transformers import HubertModel, Wav2Vec2FeatureExtractor
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a CTC checkpoint's unused lm_head is expected
    hf_logging.disable_progress_bar()
    try:
        model = HubertModel.from_pretrained(checkpoint_dir)
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(checkpoint_dir)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    model.eval()
    return model, extractor


def hubert_hidden(speech_16k: np.ndarray, model: Any, extractor: Any) -> np.ndarray:
    """Upstream ``get_hubert_from_16k_speech``: (T, 1024) float32, T = (L - 80) // 320."""
    import torch

    if speech_16k.ndim == 2:
        speech_16k = speech_16k[:, 0]
    values = extractor(speech_16k, return_tensors="pt", sampling_rate=SAMPLE_RATE).input_values
    length = int(values.shape[1])
    if length < HUBERT_KERNEL:
        raise ValueError(
            f"audio too short for HuBERT: {length} samples at 16 kHz, at least {HUBERT_KERNEL}"
            " needed (upstream crashes on an empty torch.cat)"
        )
    expected = (length - (HUBERT_KERNEL - HUBERT_STRIDE)) // HUBERT_STRIDE
    pieces = []
    full = length // HUBERT_CLIP
    with torch.no_grad():
        for i in range(full):
            start = HUBERT_CLIP * i
            piece = values[:, start : start + HUBERT_PIECE]
            pieces.append(model(piece).last_hidden_state[0])
        rest = values[:, HUBERT_CLIP * full :] if full > 0 else values
        if rest.shape[1] >= HUBERT_KERNEL:
            pieces.append(model(rest).last_hidden_state[0])
    hidden = torch.cat(pieces, dim=0)
    if abs(hidden.shape[0] - expected) > 1:
        raise AssertionError(f"{hidden.shape[0]} HuBERT frames, {expected} expected")
    if hidden.shape[0] < expected:
        hidden = torch.nn.functional.pad(hidden, (0, 0, 0, expected - hidden.shape[0]))
    else:
        hidden = hidden[:expected]
    return hidden.numpy().astype(np.float32, copy=False)


def hubert_features(path: str, checkpoint_dir: str, pad_odd: bool = True) -> np.ndarray:
    """``aud_hu.npy`` of an audio file: (ceil(T / 2) or T // 2, 2, 1024) float32.

    Parameters
    ----------
    path : str
        Audio file (anything libsndfile reads).
    checkpoint_dir : str
        HuggingFace HuBERT checkpoint directory (config.json, weights,
        preprocessor_config.json).
    pad_odd : bool
        Odd T: append a zero row (current upstream, default) or drop the last
        row (upstream up to mid-2025).
    """
    model, extractor = load_hubert(os.path.abspath(checkpoint_dir))
    speech, _ = read_first_channel_16k(path)
    hidden = hubert_hidden(speech, model, extractor)
    if hidden.shape[0] % 2 == 1:
        if pad_odd:
            hidden = np.concatenate([hidden, np.zeros_like(hidden[:1])], axis=0)
        else:
            hidden = hidden[:-1]
    return hidden.reshape(-1, 2, HUBERT_WIDTH)


# ----------------------------------------------------------------------------
# wenet


def wenet_waveform(speech_16k: np.ndarray) -> np.ndarray:
    """Upstream's int16 conversion and zero padding: float64 (32*160 + L + 35*160,)."""
    scaled = speech_16k.astype(np.float32) * 32767
    scaled = np.clip(scaled, -32768, 32767)  # FIX: the int16 cast is undefined beyond it
    pcm = scaled.astype(np.int16)  # truncating, as upstream
    return np.concatenate([np.zeros([WENET_PAD_BEFORE]), pcm, np.zeros([WENET_PAD_AFTER])], axis=0)


def wenet_fbank(speech_16k: np.ndarray, dtype: Any = None) -> np.ndarray:
    """Upstream's fbank of the 16 kHz samples: (F, 80), float32 unless ``dtype`` says otherwise."""
    import torch

    padded = torch.from_numpy(wenet_waveform(speech_16k)).float().unsqueeze(0)
    return torchaudio_fbank(padded, dtype)


def wenet_count(frames: int) -> int:
    """Number of chunks (rows of aud_wenet.npy) for F fbank frames (F >= 65 after the padding)."""
    if frames <= 0:
        return 0
    return 1 + max(0, (frames - (WENET_CHUNK - WENET_STEP + 1)) // WENET_STEP)


def wenet_chunks(feat: np.ndarray) -> Iterator[np.ndarray]:
    """Upstream's chunk loop over (F, 80) fbank: (1, 1, 67, 80) float32 chunks."""
    waveform_feat = feat[None]  # (1, F, 80), as upstream's feat.unsqueeze(0)
    frames = waveform_feat.shape[1]
    start = 0
    end = 0
    while end < frames:
        end = start + WENET_CHUNK
        chunk = waveform_feat[:, start:end, :]
        if chunk.shape[1] < WENET_CHUNK:
            zero_pad = np.zeros([1, WENET_CHUNK - chunk.shape[1], feat.shape[1]])
            chunk = np.concatenate((chunk, zero_pad), axis=1)
        start += WENET_STEP
        yield np.expand_dims(chunk, axis=0).astype(np.float32)


def wenet_encode(feat: np.ndarray, session: Any) -> np.ndarray:
    """Upstream's encoder loop: (K, 16, 512) float32 from (F, 80) fbank."""
    offset = np.ones((1,), dtype=np.int64) * WENET_OFFSET
    att_cache = np.zeros([3, 8, 16, 128], dtype=np.float32)
    cnn_cache = np.zeros([3, 1, 512, 14], dtype=np.float32)
    rows = []
    for chunk in wenet_chunks(feat):
        feed = {"chunk": chunk, "offset": offset, "att_cache": att_cache, "cnn_cache": cnn_cache}
        rows.append(session.run(None, feed)[0][0])
    return np.array(rows, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def _wenet_session(encoder_onnx: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(encoder_onnx, options, providers=["CPUExecutionProvider"])


def wenet_features(path: str, encoder_onnx: str, threads: int = 0) -> np.ndarray:
    """``aud_wenet.npy`` of an audio file: (K, 16, 512) float32.

    Parameters
    ----------
    path : str
        Audio file (anything libsndfile reads).
    encoder_onnx : str
        Ultralight's ``encoder.onnx`` or a stand-in with its interface.
    threads : int
        ONNX Runtime intra-op threads (0: its default).
    """
    speech, _ = read_first_channel_16k(path)
    feat = wenet_fbank(speech)
    return wenet_encode(feat, _wenet_session(os.path.abspath(encoder_onnx), threads))


# ----------------------------------------------------------------------------
# per-frame windows


def frame_window(features: np.ndarray, index: int, half_window: int, mode: str) -> np.ndarray:
    """Rows ``index - h .. index + h - 1`` (zero outside), reshaped to ``FRAME_SHAPES``."""
    key = (mode, half_window)
    if key not in FRAME_SHAPES:
        raise ValueError(f"no per-frame shape for mode {mode!r} with half-window {half_window}")
    row_shape = features.shape[1:]
    if row_shape != ROW_SHAPES[mode]:
        raise ValueError(f"{mode} rows are {ROW_SHAPES[mode]}, got {row_shape}")
    window = np.zeros((2 * half_window, *row_shape), dtype=features.dtype)
    first = index - half_window
    lo = max(first, 0)
    hi = min(index + half_window, features.shape[0])
    if hi > lo:
        window[lo - first : hi - first] = features[lo:hi]
    return window.reshape(FRAME_SHAPES[key])


# ----------------------------------------------------------------------------
# command


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Ultralight-Digital-Human's hubert / wenet features (upstream logic)."
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    hub = sub.add_parser("hubert", help="aud_hu.npy as data_utils/hubert.py")
    hub.add_argument("--audio", required=True)
    hub.add_argument("--checkpoint", required=True, help="HuggingFace HuBERT checkpoint directory")
    hub.add_argument("--output", required=True, help=".npy file to write")
    hub.add_argument(
        "--drop-odd", action="store_true", help="odd T: drop the last row (upstream to mid-2025)"
    )
    wen = sub.add_parser("wenet", help="aud_wenet.npy as data_utils/wenet_infer.py")
    wen.add_argument("--audio", required=True)
    wen.add_argument("--model", required=True, help="encoder.onnx (or the test stand-in)")
    wen.add_argument("--output", required=True, help=".npy file to write")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.mode == "hubert":
        feats = hubert_features(args.audio, args.checkpoint, pad_odd=not args.drop_odd)
    else:
        feats = wenet_features(args.audio, args.model)
    np.save(args.output, feats)
    print(f"wrote {args.output}: {feats.shape} in {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
