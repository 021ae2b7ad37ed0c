"""Each mode's path as upstream computes it, stage by stage: the vectors a port is held to.

Nothing here runs the package's C++ core. The front ends are the upstream
calls (``librosa.load``, ``scipy.signal.lfilter``, ``librosa.stft``,
``librosa.filters.mel``, ``soundfile.read``, ``librosa.resample``, the
``Wav2Vec2FeatureExtractor`` arithmetic in NumPy float32) or, for the Kaldi
fbank, its definition in NumPy float64 with torchaudio's float32 mel filters;
the encoders run in ONNX Runtime (the exported ``.onnx`` or ``.ort`` file).

Each stage is a `Stage`: a name, the array, the formula or upstream line it
implements, and the `Tolerance` a port must meet there (max abs difference;
``float32`` is what a float32 front end is measured to reach, where that is
not parity, see docs/NUMERICS.md). `write_vectors` writes them as
``NN_name.npy`` plus ``index.json``.

Needs librosa and scipy (``pip install 'synctalk-audio[port]'``); they are
imported when a stage is computed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import AudioLoadError, ModelError, ParameterError

__all__ = [
    "INDEX_FILE",
    "MODES",
    "VECTORS_FORMAT",
    "MissingDependencyError",
    "Stage",
    "Tolerance",
    "float32_ulps",
    "reference_stages",
    "write_vectors",
]

#: ``format`` of index.json.
VECTORS_FORMAT = "synctalk-port-vectors/1"
#: The index file of a vectors directory.
INDEX_FILE = "index.json"
#: The modes `reference_stages` knows.
MODES = ("ave", "hubert", "wenet")

SAMPLE_RATE = 16000

# -- ave (SyncTalk_2D utils.py, wav2lip hparams) ------------------------------
N_FFT = 800
HOP = 200
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
WINDOW_FRAMES = 16
BATCH = 64

# -- hubert (Ultralight data_utils/hubert.py) ------------------------------
HUBERT_KERNEL = 400
HUBERT_STRIDE = 320
HUBERT_CLIP = 320000
HUBERT_PIECE = 320080
HUBERT_EPS = 1e-7

# -- wenet (Ultralight data_utils/wenet_infer.py) -----------------------------
WENET_PAD_BEFORE = 32 * 160
WENET_PAD_AFTER = 35 * 160
WENET_CHUNK = 67
WENET_STEP = 5
WENET_OFFSET = 100
FBANK_LENGTH = 400
FBANK_SHIFT = 160
FBANK_FFT = 512
FBANK_BINS = 80
FLT_EPSILON = float(np.finfo(np.float32).eps)

# -- tolerances ------------------------------------------------------------
#: One float64 rounding of values up to 2 (an FMA allowed).
ABS_SAMPLE = 1e-15
#: Two good float64 FFTs differ by ~1e-15 of the largest |X|.
REL_SPECTRAL = 1e-12
#: Output parity of the normalized mel with librosa.
ABS_NORMALIZED = 1e-9
#: The dB budget that gives ABS_NORMALIZED (normalized = 0.08 dB + 4).
ABS_DB = ABS_NORMALIZED / 0.08
#: The encoder's float32 input: rounding alone is 2.4e-7.
ABS_WINDOWS = 1e-6
#: The AVE exporter's check: ONNX Runtime within 1e-5 of PyTorch in float64.
ABS_AVE_FEATURES = 1e-5
#: The hubert mode's tolerance against upstream's PyTorch model.
ABS_HUBERT_FEATURES = 1e-4
#: Another runtime of the same WeNet encoder on the same chunks.
ABS_WENET_FEATURES = 1e-4
#: Kaldi fbank log energies: float64 ports of the definition agree to ~4e-11.
ABS_FBANK = 1e-8
#: A float32 Kaldi fbank (torchaudio's, upstream's) against the float64 definition:
#: 3.9e-3 measured on speech (docs/NUMERICS.md, "The Kaldi fbank").
F32_FBANK = 5e-3
#: The wenet mode's tolerance against upstream's float32-fbank features.
F32_WENET_FEATURES = 3e-4
#: Decoded samples of a lossless file: another int -> float scaling is within it.
ABS_DECODED = 2.0**-20
#: What a float32 (vDSP-style) front end reaches on the normalized mel, with
#: about 2x margin over the 1.4e-4 measured on real speech (docs/NUMERICS.md 4).
F32_NORMALIZED = 3e-4
#: What that front end moves the AVE encoder's output by: about 2x the 1.05e-5
#: tools/float32_port.py measured on the golden speech (docs/NUMERICS.md 4), the
#: bound upstream's own float32 PyTorch is held to against the float64 value.
F32_AVE_FEATURES = 2e-5
#: float32 ulps of the array's largest value a float32 linear stage may be off.
F32_LINEAR_ULPS = 64


class MissingDependencyError(RuntimeError, ImportError):
    """librosa or scipy, needed for the reference path, is not installed."""


@dataclass(frozen=True)
class Tolerance:
    """What a port must meet at one stage.

    Attributes
    ----------
    abs : float
        Largest max abs difference |port - reference| allowed (0: exact).
    rule : str
        Where the number comes from.
    float32 : float or None
        What a port with a float32 (vDSP-style) front end may be held to
        instead (``conform --tier float32``); None: the same as ``abs``.
    """

    abs: float
    rule: str
    float32: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"abs": self.abs, "rule": self.rule}
        if self.float32 is not None:
            out["float32"] = self.float32
        return out


@dataclass(frozen=True)
class Stage:
    """One stage of a mode's reference path.

    Attributes
    ----------
    name : str
        Stage name (the file is ``NN_name.npy``).
    array : numpy.ndarray
        The stage's values, C order.
    formula : str
        What the stage computes.
    upstream : str
        The upstream call or line it implements.
    tolerance : Tolerance
        What a port must meet.
    """

    name: str
    array: np.ndarray
    formula: str
    upstream: str
    tolerance: Tolerance


def float32_ulps(array: np.ndarray, ulps: float) -> float:
    """``ulps`` float32 ulps of the largest |value| of ``array`` (a tolerance)."""
    scale = float(np.max(np.abs(array))) if array.size else 0.0
    return float(ulps * np.spacing(np.float32(max(scale, 1e-30))))


def _require(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the reference path needs {name.split('.')[0]}, which is not installed:"
            " pip install 'synctalk-audio[port]'"
        ) from exc


#: Each mode's encoder inputs: name (None: any) and rank, as upstream feeds them.
_SIGNATURES: dict[str, tuple[tuple[str | None, int], ...]] = {
    "ave": ((None, 4),),
    "hubert": ((None, 2),),
    "wenet": (("chunk", 4), ("offset", 1), ("att_cache", 4), ("cnn_cache", 4)),
}
_MODELS = {
    "ave": "the AVE audio encoder (mel (B, 1, 80, 16) -> (B, 512); synctalk-audio export)",
    "hubert": "a HuBERT export (input_values (B, L) -> last_hidden_state; synctalk-audio export"
    " --mode hubert)",
    "wenet": "Ultralight-Digital-Human's WeNet encoder.onnx (chunk, offset, att_cache, cnn_cache)",
}


def _session(model: str, mode: str) -> Any:
    """An ONNX Runtime session of ``model``, checked to have ``mode``'s inputs."""
    import onnxruntime as ort

    if not os.path.isfile(model):
        raise FileNotFoundError(f"model not found: {model}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ONNX Runtime's own exception types
        text = str(exc).strip().splitlines()
        raise ModelError(
            f"ONNX Runtime cannot load {model}: {text[0] if text else type(exc).__name__}"
        ) from None
    found = [(i.name, len(i.shape)) for i in session.get_inputs()]
    wanted = _SIGNATURES[mode]
    if len(found) != len(wanted) or any(
        (name is not None and name != got_name) or rank != got_rank
        for (name, rank), (got_name, got_rank) in zip(wanted, found, strict=True)
    ):
        shown = ", ".join(f"{name} (rank {rank})" for name, rank in found)
        raise ModelError(
            f"{model} is not a model of mode '{mode}': its inputs are {shown}; expected"
            f" {_MODELS[mode]}"
        )
    return session


def _run(session: Any, feeds: dict[str, np.ndarray], model: str) -> np.ndarray:
    """The session's first output; ONNX Runtime's errors as `ModelError`."""
    try:
        return np.asarray(session.run(None, feeds)[0])
    except Exception as exc:  # ONNX Runtime's own exception types
        text = str(exc).strip().splitlines()
        raise ModelError(
            f"ONNX Runtime failed to run {model}: {text[0] if text else type(exc).__name__}"
        ) from None


def _load_error(audio: str, exc: BaseException) -> AudioLoadError:
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return AudioLoadError(f"cannot decode {audio} as audio: {reason}")


def _read_first_channel_16k(path: str) -> tuple[np.ndarray, int]:
    """``soundfile.read`` (float64), the first channel, ``librosa.resample`` to 16 kHz."""
    import soundfile as sf

    try:
        speech, rate = sf.read(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _load_error(path, exc) from None
    if speech.size == 0:
        raise AudioLoadError(f"{path} holds no samples")
    if speech.ndim == 2:
        speech = speech[:, 0]
    if rate != SAMPLE_RATE:
        librosa = _require("librosa")
        speech = librosa.resample(speech, orig_sr=rate, target_sr=SAMPLE_RATE)
    return np.asarray(speech, dtype=np.float64), int(rate)


def _window_rows(features: np.ndarray, half_window: int, frame_shape: Sequence[int]) -> np.ndarray:
    """Every video frame's U-Net input: rows i-h .. i+h-1 (zero outside), reshaped."""
    count = features.shape[0]
    out = np.zeros((count, 2 * half_window, *features.shape[1:]), dtype=np.float32)
    for index in range(count):
        first = index - half_window
        lo, hi = max(first, 0), min(index + half_window, count)
        out[index, lo - first : hi - first] = features[lo:hi]
    return out.reshape(count, *frame_shape)


def _frames_stage(features: np.ndarray, half_window: int, mode: str, tol: Tolerance) -> Stage:
    from ..modes import get_mode

    shape = get_mode(mode).frame_shape(half_window)
    return Stage(
        "frames",
        _window_rows(features, half_window, shape),
        f"frame i (one per feature row): rows i-{half_window} .. i+{half_window - 1} of the"
        f" feature array, zero outside, reshaped C-order to {tuple(shape)}",
        "SyncTalk_2D get_audio_features / Ultralight gather_audio_window (padding fixed"
        " to its intent for short arrays)",
        tol,
    )


# ----------------------------------------------------------------------------
# ave


def ave_stages(
    audio: str, model: str, *, fps: float = 25.0, half_window: int = 8, pad_mode: str = "constant"
) -> list[Stage]:
    """SyncTalk_2D's AVE path for one file, every stage (see the module docstring)."""
    librosa = _require("librosa")
    signal = _require("scipy.signal")
    if pad_mode not in ("constant", "reflect"):
        raise ParameterError(f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")
    session = _session(model, "ave")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # audioread imports aifc; librosa's fallback warns
            wav = librosa.load(audio, sr=SAMPLE_RATE)[0]
    except Exception as exc:  # soundfile's and audioread's errors alike
        raise _load_error(audio, exc) from None
    mel_frames = 1 + len(wav) // HOP
    if mel_frames < WINDOW_FRAMES:
        raise ParameterError(
            f"audio too short for mode 'ave': {len(wav)} samples at 16 kHz give {mel_frames}"
            f" mel frames, the encoder needs at least {WINDOW_FRAMES} (0.19 s)"
        )
    y = signal.lfilter([1, -PREEMPHASIS], [1], wav)
    window = signal.get_window("hann", N_FFT, fftbins=True).astype(np.float64)
    padded = np.pad(y, N_FFT // 2, mode="reflect" if pad_mode == "reflect" else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:mel_frames]
    D = librosa.stft(y=y, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, pad_mode=pad_mode)
    magnitude = np.ascontiguousarray(np.abs(D).T)
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    mel = np.ascontiguousarray(np.dot(basis, np.abs(D)).T)
    min_level = np.exp(-5 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, mel)) - 20
    normalized = np.clip(8.0 * ((db + 100.0) / 100.0) - 4.0, -4.0, 4.0)

    count = int((mel_frames - WINDOW_FRAMES) / 80.0 * float(fps)) + 2
    windows = np.empty((count, 1, N_MELS, WINDOW_FRAMES), dtype=np.float32)
    for i in range(count):
        start = int(80.0 * (i / float(fps)))
        if start + WINDOW_FRAMES > mel_frames:
            start = mel_frames - WINDOW_FRAMES
        windows[i, 0] = normalized[start : start + WINDOW_FRAMES].T
    name = session.get_inputs()[0].name
    outputs = np.concatenate(
        [_run(session, {name: windows[s : s + BATCH]}, model) for s in range(0, count, BATCH)]
    ).astype(np.float32)
    aud_ave = np.concatenate([outputs[:1], outputs, outputs[-1:]]).astype(np.float32)

    spec_scale = float(magnitude.max())
    mel_scale = max(float(mel.max()), spec_scale * float(basis.astype(np.float64).sum(1).max()))
    features = Tolerance(
        ABS_AVE_FEATURES,
        "the exporter's check (ONNX Runtime within 1e-5 of PyTorch float64) for the same"
        " encoder windows; float32: a float32 front end's effect measured on real speech",
        F32_AVE_FEATURES,
    )

    def linear(scale: float, what: str) -> Tolerance:
        return Tolerance(
            REL_SPECTRAL * scale,
            f"{REL_SPECTRAL:g} x {what} ({scale:.17g}); float32: {F32_LINEAR_ULPS} float32 ulps"
            " of the array's largest value",
            F32_LINEAR_ULPS * float(np.spacing(np.float32(scale))),
        )

    one = Tolerance(
        ABS_SAMPLE,
        "one float64 rounding (FMA allowed); float32: one float32 rounding of values up to 2",
        float32_ulps(np.array([2.0]), 2),
    )
    return [
        Stage(
            "samples",
            wav,
            "float32 mono at 16 kHz: the file's channels averaged, resampled by soxr HQ",
            "librosa.load(path, sr=16000)[0]",
            Tolerance(
                ABS_DECODED,
                "a lossless 16 kHz file decodes within 2^-20; another resampler is not covered:"
                " feed the port these samples",
            ),
        ),
        Stage(
            "preemphasis",
            y,
            "y[0] = x[0], y[n] = x[n] - 0.97 x[n-1], float64",
            "scipy.signal.lfilter([1, -0.97], [1], wav)",
            one,
        ),
        Stage(
            "stft_frames",
            np.ascontiguousarray(frames),
            f"frame k = y_pad[200 k : 200 k + 800], y_pad = y padded by 400 each side"
            f" ('{pad_mode}'), before the window; T = 1 + len // 200",
            f"librosa.stft(..., center=True, pad_mode='{pad_mode}') framing",
            one,
        ),
        Stage(
            "window",
            window,
            "periodic Hann: 0.5 - 0.5 cos(2 pi n / 800), n = 0 .. 799, float64",
            "scipy.signal.get_window('hann', 800, fftbins=True) (librosa.stft's window)",
            Tolerance(
                ABS_SAMPLE,
                "one cos rounding; float32: one float32 rounding",
                float32_ulps(window, 1),
            ),
        ),
        Stage(
            "magnitude",
            magnitude,
            "|rfft(frame * window)|, 401 bins, frame-major (T, 401), float64",
            "np.abs(librosa.stft(y, n_fft=800, hop_length=200, win_length=800))",
            linear(spec_scale, "max |X| of the clip"),
        ),
        Stage(
            "mel",
            mel,
            "filterbank (float32 weights, Slaney) . magnitude, summed in float64, (T, 80)",
            "np.dot(librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600),"
            " np.abs(D))",
            linear(mel_scale, "max(max mel, max |X| x max filter row sum)"),
        ),
        Stage(
            "db",
            db,
            "20 log10(max(1e-5, mel)) - 20, 1e-5 computed as exp(-5 ln 10)",
            "_amp_to_db(...) - hp.ref_level_db",
            Tolerance(ABS_DB, "the normalized budget / 0.08", F32_NORMALIZED / 0.08),
        ),
        Stage(
            "normalized",
            normalized,
            "clip(8 (db + 100) / 100 - 4, -4, 4): the mel spectrogram, frame-major (T, 80)",
            "_normalize(S) (wav2lip audio.py, symmetric, max_abs_value 4)",
            Tolerance(
                ABS_NORMALIZED,
                "output parity with librosa; float32: what a float32 front end reaches",
                F32_NORMALIZED,
            ),
        ),
        Stage(
            "encoder_windows",
            windows,
            f"window i = float32(normalized[s : s + 16]).T, s = int(80 i / fps) clamped to"
            f" T - 16; N = int((T - 16) / 80 fps) + 2 windows, fps {fps:g}",
            "AudDataset.crop_audio_window, torch.FloatTensor(mel.T).unsqueeze(0)",
            Tolerance(
                ABS_WINDOWS,
                "float32 rounding of a value within 1e-9 (2.4e-7 alone); float32: as normalized",
                F32_NORMALIZED,
            ),
        ),
        Stage(
            "encoder_outputs",
            outputs,
            "the AudioEncoder on each window, (N, 512) float32",
            "model(mel) under torch.no_grad(), DataLoader(batch_size=64)",
            features,
        ),
        Stage(
            "aud_ave",
            aud_ave,
            "[o[0], o[0] .. o[N-1], o[N-1]]: (N + 2, 512) float32",
            "torch.cat([first_frame, outputs, last_frame]) -> aud_ave.npy",
            features,
        ),
        _frames_stage(aud_ave, half_window, "ave", features),
    ]


# ----------------------------------------------------------------------------
# hubert


def hubert_stages(
    audio: str, model: str, *, half_window: int = 8, pad_odd: bool = True
) -> list[Stage]:
    """Ultralight's hubert path for one file, every stage (see the module docstring)."""
    session = _session(model, "hubert")
    speech, _rate = _read_first_channel_16k(audio)
    if len(speech) < HUBERT_KERNEL:
        raise ParameterError(
            f"audio too short for mode 'hubert': need at least {HUBERT_KERNEL} samples at"
            f" 16 kHz, got {len(speech)}"
        )
    x = speech.astype(np.float32)
    values = ((x - x.mean()) / np.sqrt(x.var() + HUBERT_EPS)).astype(np.float32)
    length = len(values)
    expected = (length - (HUBERT_KERNEL - HUBERT_STRIDE)) // HUBERT_STRIDE
    name = session.get_inputs()[0].name
    pieces: list[np.ndarray] = []
    full = length // HUBERT_CLIP
    for i in range(full):
        piece = values[HUBERT_CLIP * i : HUBERT_CLIP * i + HUBERT_PIECE]
        pieces.append(_run(session, {name: piece[None]}, model)[0])
    rest = values[HUBERT_CLIP * full :] if full > 0 else values
    if len(rest) >= HUBERT_KERNEL:
        pieces.append(_run(session, {name: rest[None]}, model)[0])
    hidden = np.concatenate(pieces).astype(np.float32)
    width = hidden.shape[1]
    if hidden.shape[0] < expected:
        hidden = np.concatenate([hidden, np.zeros((expected - hidden.shape[0], width), np.float32)])
    hidden = hidden[:expected]
    if expected % 2 == 1:
        if pad_odd:
            pairs = np.concatenate([hidden, np.zeros((1, width), np.float32)])
        else:
            pairs = hidden[:-1]
    else:
        pairs = hidden
    aud_hu = pairs.reshape(-1, 2, width)
    features = Tolerance(
        ABS_HUBERT_FEATURES,
        "the hubert mode's tolerance against upstream's PyTorch HubertModel (float32); runtimes"
        " of the same model on the same input measure ~1e-5",
    )
    stages = [
        Stage(
            "samples",
            speech,
            "float64 at 16 kHz: the first channel, resampled by soxr HQ if the file is not 16 kHz",
            "soundfile.read(path); [:, 0] (before resampling); librosa.resample(x, orig_sr=sr,"
            " target_sr=16000)",
            Tolerance(ABS_DECODED, "a lossless 16 kHz file decodes within 2^-20"),
        ),
        Stage(
            "normalized_input",
            values,
            "x = float32(samples); (x - x.mean()) / sqrt(x.var() + 1e-7), NumPy float32",
            "Wav2Vec2Processor(...)(x, sampling_rate=16000).input_values",
            Tolerance(
                float32_ulps(values, 2),
                "2 float32 ulps of the largest value: float64 arithmetic rounded to float32"
                " differs by one ulp in ~40% of the samples",
            ),
        ),
    ]
    starts = [HUBERT_CLIP * i for i in range(len(pieces))]
    for i, (piece, start) in enumerate(zip(pieces, starts, strict=True)):
        end = min(start + HUBERT_PIECE, length) if i < full else length
        stages.append(
            Stage(
                f"hidden_chunk{i:03d}",
                np.ascontiguousarray(piece, dtype=np.float32),
                f"last_hidden_state[0] of normalized_input[{start}:{end}], ({piece.shape[0]},"
                f" {width}) float32",
                "model(input_values[:, 320000 i : 320000 i + 320080]).last_hidden_state, then"
                " the remainder if it has at least 400 samples",
                features,
            )
        )
    stages += [
        Stage(
            "hidden",
            hidden,
            "the chunks' rows concatenated, cut or zero-padded to T = (L - 80) // 320"
            f" = {expected}",
            "torch.cat(res, dim=0); ret[:expected] (get_hubert_from_16k_speech)",
            features,
        ),
        Stage(
            "pairs",
            np.ascontiguousarray(pairs),
            "hidden made even: an odd T gets one zero row"
            + ("" if pad_odd else " dropped: the last row removed"),
            "make_even_first_dim(hidden)" if pad_odd else "hidden[:-1] (upstream before mid-2025)",
            features,
        ),
        Stage(
            "aud_hu",
            np.ascontiguousarray(aud_hu),
            f"pairs.reshape(-1, 2, {width}) float32",
            "hubert_hidden.reshape(-1, 2, 1024) -> aud_hu.npy",
            features,
        ),
        _frames_stage(aud_hu, half_window, "hubert", features),
    ]
    return stages


# ----------------------------------------------------------------------------
# wenet


def povey_window() -> np.ndarray:
    """Kaldi's povey window of 400 samples, float64."""
    j = np.arange(FBANK_LENGTH, dtype=np.float64)
    out: np.ndarray = (0.5 - 0.5 * np.cos(2.0 * np.pi * j / (FBANK_LENGTH - 1))) ** 0.85
    return out


def torchaudio_mel_banks() -> np.ndarray:
    """(80, 257) mel filters built in float32 as torchaudio's ``get_mel_banks`` builds them."""
    f32 = np.float32

    def mel_scale(freq: float) -> float:
        return 1127.0 * float(np.log(1.0 + freq / 700.0))

    mel_low, mel_high = mel_scale(20.0), mel_scale(SAMPLE_RATE / 2)
    delta = (mel_high - mel_low) / (FBANK_BINS + 1)
    low, step = f32(mel_low), f32(delta)
    b = np.arange(FBANK_BINS, dtype=f32)[:, None]
    left = low + b * step
    centre = low + (b + f32(1)) * step
    right = low + (b + f32(2)) * step
    freq = f32(SAMPLE_RATE / FBANK_FFT) * np.arange(FBANK_FFT // 2, dtype=f32)
    inner = f32(1) + freq / f32(700)
    mel = (f32(1127) * np.log(inner.astype(np.float64)).astype(f32))[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    weights = np.maximum(f32(0), np.minimum(up, down))
    return np.pad(weights, ((0, 0), (0, 1)))


def kaldi_fbank(wave: np.ndarray) -> np.ndarray:
    """Kaldi's log mel fbank of ``wave`` (int16-valued, 16 kHz) in float64: (F, 80)."""
    wave = np.asarray(wave, dtype=np.float64)
    count = 1 + (len(wave) - FBANK_LENGTH) // FBANK_SHIFT
    index = np.arange(count)[:, None] * FBANK_SHIFT + np.arange(FBANK_LENGTH)[None, :]
    x = wave[index]
    x = x - x.mean(axis=1, keepdims=True)
    x = x - PREEMPHASIS * np.concatenate([x[:, :1], x[:, :-1]], axis=1)
    x = x * povey_window()
    spectrum = np.fft.rfft(x, n=FBANK_FFT, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    energies = power @ torchaudio_mel_banks().astype(np.float64).T
    out: np.ndarray = np.log(np.maximum(energies, FLT_EPSILON))
    return out


def wenet_stages(audio: str, model: str, *, half_window: int = 8) -> list[Stage]:
    """Ultralight's wenet path for one file, every stage (see the module docstring)."""
    session = _session(model, "wenet")
    speech, _rate = _read_first_channel_16k(audio)
    scaled = np.clip(speech.astype(np.float32) * np.float32(32767), -32768, 32767)
    pcm = scaled.astype(np.int16)
    padded = np.concatenate([np.zeros(WENET_PAD_BEFORE), pcm, np.zeros(WENET_PAD_AFTER)]).astype(
        np.float32
    )
    fbank = kaldi_fbank(padded)
    frames = fbank.shape[0]
    count = 1 + max(0, (frames - (WENET_CHUNK - WENET_STEP + 1)) // WENET_STEP)
    chunks = np.zeros((count, WENET_CHUNK, FBANK_BINS), dtype=np.float32)
    for k in range(count):
        rows = fbank[WENET_STEP * k : WENET_STEP * k + WENET_CHUNK]
        chunks[k, : rows.shape[0]] = rows
    feeds: dict[str, np.ndarray] = {
        "offset": np.full((1,), WENET_OFFSET, dtype=np.int64),
        "att_cache": np.zeros((3, 8, 16, 128), dtype=np.float32),
        "cnn_cache": np.zeros((3, 1, 512, 14), dtype=np.float32),
    }
    outputs = np.array(
        [_run(session, {"chunk": chunks[k][None, None], **feeds}, model)[0] for k in range(count)],
        dtype=np.float32,
    )
    features = Tolerance(
        ABS_WENET_FEATURES,
        "another runtime of the same encoder on the same chunks; float32: the wenet mode's"
        " tolerance against upstream's features from torchaudio's float32 fbank",
        F32_WENET_FEATURES,
    )
    return [
        Stage(
            "samples",
            speech,
            "float64 at 16 kHz: the first channel, resampled by soxr HQ if the file is not 16 kHz",
            "soundfile.read(path); [:, 0]; (resampling added: upstream ignores the rate)",
            Tolerance(ABS_DECODED, "a lossless 16 kHz file decodes within 2^-20"),
        ),
        Stage(
            "int16",
            pcm,
            "trunc(clip(float32(x) * 32767, -32768, 32767)) as int16 (truncation toward 0)",
            "(speech.astype(np.float32) * 32767).astype(np.int16)",
            Tolerance(0.0, "exact: integers"),
        ),
        Stage(
            "padded",
            padded,
            f"{WENET_PAD_BEFORE} zeros, the int16 values, {WENET_PAD_AFTER} zeros, float32",
            "np.concatenate([np.zeros([32*160]), speech, np.zeros([35*160])]);"
            " torch.from_numpy(...).float()",
            Tolerance(0.0, "exact: integers"),
        ),
        Stage(
            "fbank",
            fbank,
            "Kaldi log mel fbank: 400-sample frames every 160 (snip edges), DC removed,"
            " pre-emphasis 0.97, povey window, 512-point power spectrum, 80 float32 mel"
            " filters (torchaudio's build), log(max(e, FLT_EPSILON)), float64 (F, 80)",
            "torchaudio.compliance.kaldi.fbank(wave, num_mel_bins=80, frame_length=25,"
            " frame_shift=10, dither=0, energy_floor=0.0, sample_frequency=16000)",
            Tolerance(
                ABS_FBANK,
                "float64 ports of the definition agree to ~4e-11; float32: a float32 fbank such"
                " as torchaudio's (upstream's), 3.9e-3 from it on speech",
                F32_FBANK,
            ),
        ),
        Stage(
            "chunks",
            chunks,
            "chunk k = float32(fbank[5 k : 5 k + 67]), zero rows past the end;"
            " K = 1 + max(0, (F - 63) // 5)",
            "feat[:, start:end] zero-padded to 67, start += 5 (wenet_infer.py)",
            Tolerance(
                float32_ulps(chunks, 2),
                "float32 rounding: 2 float32 ulps of the largest; float32: as fbank",
                F32_FBANK,
            ),
        ),
        Stage(
            "encoder_outputs",
            outputs,
            "encoder(chunk, offset=100, zero att_cache, zero cnn_cache)[0][0] per chunk,"
            " (K, 16, 512) float32",
            "ort_session.run(None, {'chunk', 'offset', 'att_cache', 'cnn_cache'})[0][0]",
            features,
        ),
        Stage(
            "aud_wenet",
            outputs.copy(),
            "the encoder outputs stacked: (K, 16, 512) float32",
            "np.array(outs) -> aud_wenet.npy",
            features,
        ),
        _frames_stage(outputs, half_window, "wenet", features),
    ]


# ----------------------------------------------------------------------------


_BUILDERS: dict[str, Callable[..., list[Stage]]] = {
    "ave": ave_stages,
    "hubert": hubert_stages,
    "wenet": wenet_stages,
}


def reference_stages(mode: str, audio: str, model: str, **settings: Any) -> list[Stage]:
    """Every stage of ``mode``'s reference path for ``audio`` with ``model``.

    Parameters
    ----------
    mode : {"ave", "hubert", "wenet"}
        The feature mode.
    audio : str
        An audio file (anything libsndfile reads; ave: anything librosa.load reads).
    model : str
        The mode's encoder as ONNX Runtime loads it (``.onnx`` or ``.ort``).
    **settings
        ave: ``fps`` (25), ``half_window`` (8), ``pad_mode`` ("constant");
        hubert: ``half_window``, ``pad_odd`` (True); wenet: ``half_window``.

    Returns
    -------
    list of Stage
        In the order the path computes them.

    Raises
    ------
    ParameterError
        Unknown mode, bad setting, audio too short.
    FileNotFoundError, ModelError, AudioLoadError
        The model or audio cannot be read.
    MissingDependencyError
        librosa or scipy is missing.
    """
    if mode not in _BUILDERS:
        raise ParameterError(f"unknown mode '{mode}': expected one of {', '.join(MODES)}")
    if not os.path.exists(audio):
        raise FileNotFoundError(f"audio file not found: {audio}")
    return _BUILDERS[mode](audio, model, **settings)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    out = {"synctalk-audio": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "librosa", "soundfile", "soxr", "onnxruntime"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def file_name(position: int, stage: str) -> str:
    """``NN_stage.npy``: stage files sort in the path's order."""
    return f"{position:02d}_{stage}.npy"


def write_vectors(
    output: str,
    mode: str,
    audio: str,
    model: str,
    *,
    settings: dict[str, Any] | None = None,
    stages: list[Stage] | None = None,
) -> dict[str, Any]:
    """Write every stage of ``mode`` for ``audio`` to the directory ``output``.

    The directory is built beside ``output`` and renamed into place; an
    existing ``output`` is replaced only if it is a vectors directory
    (holds an ``index.json`` of this format) or empty.

    Returns
    -------
    dict
        The index written to ``output/index.json``.
    """
    settings = dict(settings or {})
    if stages is None:
        stages = reference_stages(mode, audio, model, **settings)
    final = os.path.abspath(output)
    if os.path.exists(final):
        if not os.path.isdir(final):
            raise ParameterError(f"--output {final} is a file; give a directory for the vectors")
        if os.listdir(final) and not _is_vectors_dir(final):
            raise ParameterError(
                f"--output {final} is a non-empty directory that does not hold vectors"
                f" ({INDEX_FILE} of format {VECTORS_FORMAT}); choose another or empty it"
            )
    parent = os.path.dirname(final)
    if not os.path.isdir(parent):
        raise ParameterError(f"cannot write {final}: directory {parent} does not exist")
    index: dict[str, Any] = {
        "format": VECTORS_FORMAT,
        "generator": "synctalk-audio vectors",
        "mode": mode,
        "audio": {"file": os.path.basename(audio), "sha256": _sha256(audio)},
        "model": {"file": os.path.basename(model), "sha256": _sha256(model)},
        "settings": settings,
        "versions": _versions(),
        "conventions": {
            "files": ".npy version 1.0, little-endian, C order, in the path's order (NN_name)",
            "compare": "max |port - reference| over a stage must be <= tolerance.abs"
            " (tolerance.float32 for a float32 front end); `synctalk-audio conform` checks it",
            "layout": "frame-major, rows first: (frames, bins), (windows, ...), (rows, ...)",
        },
        "stages": [],
    }
    import shutil
    import tempfile

    staging = tempfile.mkdtemp(prefix=".vectors-", dir=parent)
    try:
        os.chmod(staging, 0o755)
        for position, stage in enumerate(stages):
            array = np.ascontiguousarray(stage.array)
            array = array.astype(array.dtype.newbyteorder("<"), copy=False)
            name = file_name(position, stage.name)
            np.save(os.path.join(staging, name), array, allow_pickle=False)
            index["stages"].append(
                {
                    "name": stage.name,
                    "file": name,
                    "shape": list(array.shape),
                    "dtype": array.dtype.name,
                    "formula": stage.formula,
                    "upstream": stage.upstream,
                    "tolerance": stage.tolerance.as_dict(),
                }
            )
        with open(os.path.join(staging, INDEX_FILE), "w", encoding="utf-8") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
        if os.path.exists(final):
            old = final + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return index


def _is_vectors_dir(path: str) -> bool:
    try:
        with open(os.path.join(path, INDEX_FILE), encoding="utf-8") as f:
            return bool(json.load(f).get("format") == VECTORS_FORMAT)
    except (OSError, ValueError, AttributeError):
        return False
