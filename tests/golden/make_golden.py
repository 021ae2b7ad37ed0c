#!/usr/bin/env python3
"""Golden data from THE REAL REFERENCE (librosa 0.11.0 + SciPy + NumPy).

How to run (from the repository root, after tests/data/make_test_audio.py):

    python tests/golden/make_golden.py            # rewrite tests/golden/*.npz + manifest.json
    python tests/golden/make_golden.py --check    # recompute, compare with the committed files
                                                  # (within the last-bit differences between
                                                  # CPUs, tests/tolerances.py)
    python tests/golden/make_golden.py --force    # allow a librosa other than 0.11.0 (don't commit)

For every audio file in tests/data/ (.wav .flac .ogg .mp3) this writes
tests/golden/<stem>.npz holding

- ``samples``: ``librosa.load(path, sr=16000)[0]`` (float32, the loader's
  output; tests/test_golden_audio.py says how exactly it must match);
- ``mel_constant``: the SyncTalk_2D mel spectrogram (80, T), float64, with
  ``librosa.stft(..., pad_mode="constant")`` (librosa >= 0.10 behaviour);
- ``mel_reflect_head`` / ``mel_reflect_tail``: the first and last
  ``EDGE_FRAMES`` frames of the same with ``pad_mode="reflect"`` (librosa
  < 0.10). The frames between equal ``mel_constant`` (librosa computes them
  from the unpadded signal; this script asserts it, up to rounding), so the
  full reflect spectrogram is ``mel_constant`` with its edges replaced;
- ``starts_fps<F>``: the AudDataset window starts for F in 25, 30 and 29.97
  (``29p97`` in the key), int64, after the end clamp; their count is the
  AudDataset ``data_len``;

and tests/golden/manifest.json with the library versions, the reference
parameters, each input file's SHA-256 and facts, and per-case shapes and
window counts. The .npz files are written with fixed zip timestamps so that
the same inputs and libraries give the same bytes.

The mel is computed exactly as SyncTalk_2D ``utils.py`` (wav2lip hparams)
does, in float64 except for librosa's float32 mel basis:

    y = scipy.signal.lfilter([1, -0.97], [1], wav)
    D = librosa.stft(y=y, n_fft=800, hop_length=200, win_length=800, pad_mode=...)
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    S = 20 * log10(maximum(exp(-5 * log(10)), basis . |D|)) - 20
    mel = clip((2 * 4.) * ((S - -100) / (--100)) - 4., -4., 4.)
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import os
import platform
import sys
import warnings
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "data")
sys.path.insert(0, os.path.dirname(HERE))
import tolerances  # noqa: E402  (tests/tolerances.py)

MANIFEST = os.path.join(HERE, "manifest.json")

REQUIRED_LIBROSA = "0.11.0"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
SAMPLE_RATE = 16000
FPS_VALUES = (25.0, 30.0, 29.97)
EDGE_FRAMES = 4
#: The float64 mel tolerance the golden mel is used with (tests/test_golden_mel.py).
MEL_TOLERANCE_F64 = 1e-9
MEL_STEP_SIZE = 16

# wav2lip / SyncTalk_2D hparams
HP = {
    "sample_rate": 16000,
    "preemphasis": 0.97,
    "n_fft": 800,
    "hop_size": 200,
    "win_size": 800,
    "num_mels": 80,
    "fmin": 55,
    "fmax": 7600,
    "min_level_db": -100,
    "ref_level_db": 20,
    "max_abs_value": 4.0,
}


def fps_key(fps: float) -> str:
    """``25.0`` -> ``"25"``, ``29.97`` -> ``"29p97"`` (the npz key suffix)."""
    text = f"{fps:g}"
    return text.replace(".", "p")


# ----------------------------------------------------------------------------
# the reference


class Reference:
    """SyncTalk_2D's audio functions on librosa/SciPy/NumPy, written out."""

    def __init__(self) -> None:
        import librosa
        from scipy import signal

        self.librosa = librosa
        self.signal = signal
        self.mel_basis = librosa.filters.mel(
            sr=HP["sample_rate"],
            n_fft=HP["n_fft"],
            n_mels=HP["num_mels"],
            fmin=HP["fmin"],
            fmax=HP["fmax"],
        )

    def load(self, path: str) -> np.ndarray:
        return self.librosa.load(path, sr=SAMPLE_RATE)[0]

    def melspectrogram(self, wav: np.ndarray, pad_mode: str) -> np.ndarray:
        # preemphasis(wav, k): signal.lfilter([1, -k], [1], wav)
        emphasised = self.signal.lfilter([1, -HP["preemphasis"]], [1], wav)
        # _stft(y): librosa.stft(y=y, n_fft, hop_length, win_length) (+ the pad mode)
        spectrum = self.librosa.stft(
            y=emphasised,
            n_fft=HP["n_fft"],
            hop_length=HP["hop_size"],
            win_length=HP["win_size"],
            pad_mode=pad_mode,
        )
        # _linear_to_mel(np.abs(D)): np.dot(mel_basis, spectrogram)
        mel = np.dot(self.mel_basis, np.abs(spectrum))
        # _amp_to_db(x) - ref_level_db
        min_level = np.exp(HP["min_level_db"] / 20 * np.log(10))
        db = 20 * np.log10(np.maximum(min_level, mel)) - HP["ref_level_db"]
        # _normalize(S), symmetric, signal_normalization and allow_clipping_in_normalization
        m = HP["max_abs_value"]
        return np.clip((2 * m) * ((db - HP["min_level_db"]) / (-HP["min_level_db"])) - m, -m, m)

    @staticmethod
    def data_len(mel_frames: int, fps: float) -> int:
        # AudDataset: int((orig_mel.shape[0] - 16) / 80. * float(fps)) + 2
        return int((mel_frames - 16) / 80.0 * float(fps)) + 2

    @staticmethod
    def window_start(mel_frames: int, index: int, fps: float) -> int:
        # AudDataset.crop_audio_window: start = int(80. * (i / float(fps)));
        # end = start + 16; if end > M: end = M; start = end - 16
        start = int(80.0 * (index / float(fps)))
        end = start + MEL_STEP_SIZE
        if end > mel_frames:
            end = mel_frames
            start = end - MEL_STEP_SIZE
        return start


# ----------------------------------------------------------------------------
# files


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def audio_files() -> list[str]:
    files = [
        p
        for p in sorted(glob.glob(os.path.join(DATA, "*")))
        if p.lower().endswith(AUDIO_EXTENSIONS)
    ]
    if not files:
        raise SystemExit(f"no audio files in {DATA}: run tests/data/make_test_audio.py first")
    return files


def write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed zip timestamps (same bytes every run)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def versions() -> dict[str, str]:
    import librosa
    import scipy
    import soundfile
    import soxr

    return {
        "librosa": librosa.__version__,
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
        "soxr": soxr.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def matches(key: str, committed: np.ndarray, fresh: np.ndarray, facts: dict[str, object]) -> bool:
    """Whether a fresh array reproduces the committed one, up to the last-bit
    differences between CPUs (tests/tolerances.py): window starts exactly (integers),
    samples within the decoded-sample tolerance (exact for lossless 16 kHz files),
    mel arrays within tolerances.regenerated_tolerance of the 1e-9 float64 mel
    tolerance of tests/test_golden_mel.py."""
    if key.startswith("starts_"):
        return bool(np.array_equal(committed, fresh))
    if key == "samples":
        rate = facts["sample_rate"]
        assert isinstance(rate, int), rate
        tol = tolerances.decoded_sample_tolerance(str(facts["format"]), rate)
        return tolerances.max_abs_diff(fresh, committed) <= tol
    allowed = tolerances.regenerated_tolerance(committed, MEL_TOLERANCE_F64)
    return tolerances.max_abs_diff(fresh, committed) <= allowed


# ----------------------------------------------------------------------------
# one case


def make_case(ref: Reference, path: str) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    import soundfile as sf

    name = os.path.splitext(os.path.basename(path))[0]
    info = sf.info(path)
    samples = ref.load(path)
    assert samples.dtype == np.float32 and samples.ndim == 1, (name, samples.dtype, samples.shape)

    mel_constant = ref.melspectrogram(samples, "constant")
    mel_reflect = ref.melspectrogram(samples, "reflect")
    frames = 1 + samples.shape[0] // HP["hop_size"]
    for mel in (mel_constant, mel_reflect):
        assert mel.dtype == np.float64, mel.dtype
        assert mel.shape == (HP["num_mels"], frames), (name, mel.shape, frames)
    assert frames > 2 * EDGE_FRAMES, (name, frames)
    inner = slice(EDGE_FRAMES, frames - EDGE_FRAMES)
    # "differ" = beyond the rounding of two runs of the same computation
    rounding = tolerances.SAME_COMPUTATION_ULPS * tolerances.scale_ulp(mel_constant)
    if tolerances.max_abs_diff(mel_reflect[:, inner], mel_constant[:, inner]) > rounding:
        raise SystemExit(
            f"{name}: the reflect and constant mel differ beyond the first/last"
            f" {EDGE_FRAMES} frames; raise EDGE_FRAMES"
        )
    pad_diff = np.abs(mel_reflect - mel_constant).max(axis=0)
    differing = [int(i) for i in np.nonzero(pad_diff > rounding)[0]]

    arrays: dict[str, np.ndarray] = {
        "samples": samples,
        "mel_constant": mel_constant,
        "mel_reflect_head": mel_reflect[:, :EDGE_FRAMES],
        "mel_reflect_tail": mel_reflect[:, frames - EDGE_FRAMES :],
    }
    windows: dict[str, dict[str, int]] = {}
    for fps in FPS_VALUES:
        count = ref.data_len(frames, fps)
        starts = np.array([ref.window_start(frames, i, fps) for i in range(count)], dtype=np.int64)
        assert starts.min() >= 0 and starts.max() + MEL_STEP_SIZE <= frames
        arrays[f"starts_fps{fps_key(fps)}"] = starts
        windows[fps_key(fps)] = {
            "fps": fps,
            "count": count,
            "clamped": int(np.sum(starts == frames - MEL_STEP_SIZE)),
        }

    facts: dict[str, object] = {
        "file": os.path.basename(path),
        "file_sha256": sha256(path),
        "format": f"{info.format}/{info.subtype}",
        "sample_rate": int(info.samplerate),
        "channels": int(info.channels),
        "frames": int(info.frames),
        "samples_16k": int(samples.shape[0]),
        "samples_peak": float(np.abs(samples).max()),
        "mel_shape": [HP["num_mels"], frames],
        "mel_frames": frames,
        "mel_min": float(mel_constant.min()),
        "mel_max": float(mel_constant.max()),
        "pad_modes_differ_in_frames": differing,
        "pad_modes_max_abs_diff": float(pad_diff.max()),
        "windows": windows,
        "golden": f"{name}.npz",
    }
    return arrays, facts


# ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"run even if librosa is not {REQUIRED_LIBROSA} (the result is not the reference)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="recompute in memory and compare with the committed golden files",
    )
    args = parser.parse_args(argv)

    import librosa

    if librosa.__version__ != REQUIRED_LIBROSA and not args.force:
        parser.error(
            f"librosa {librosa.__version__} is installed; the golden data is defined by"
            f" librosa {REQUIRED_LIBROSA} (pip install librosa=={REQUIRED_LIBROSA}),"
            " or pass --force to run anyway"
        )
    # a soundfile failure must not silently fall back to audioread (librosa
    # then warns "PySoundFile failed. Trying audioread instead." + a FutureWarning)
    warnings.simplefilter("error", UserWarning)
    warnings.simplefilter("error", FutureWarning)

    ref = Reference()
    manifest: dict[str, object] = {
        "description": "golden data for synctalk_audio from librosa.load and SyncTalk_2D's"
        " utils.melspectrogram / AudDataset; written by tests/golden/make_golden.py",
        "versions": versions(),
        "reference": {
            "load": f"librosa.load(path, sr={SAMPLE_RATE})[0]",
            "preemphasis": "scipy.signal.lfilter([1, -0.97], [1], wav)",
            "stft": "librosa.stft(y, n_fft=800, hop_length=200, win_length=800, pad_mode=...)",
            "mel_basis": "librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)",
            "mel": "np.dot(basis, np.abs(D))",
            "db": "20*np.log10(np.maximum(np.exp(-5*np.log(10)), x)) - 20",
            "normalize": "np.clip((2*4.)*((S - -100)/(--100)) - 4., -4., 4.)",
            "num_windows": "int((M - 16) / 80. * float(fps)) + 2",
            "window_start": "int(80. * (i / float(fps))), end clamp: start = M - 16",
            "hparams": HP,
        },
        "layout": {
            "samples": "float32 (n,)",
            "mel_constant": "float64 (80, T)",
            "mel_reflect_head": f"float64 (80, {EDGE_FRAMES}):"
            f" reflect mel frames [0, {EDGE_FRAMES})",
            "mel_reflect_tail": f"float64 (80, {EDGE_FRAMES}):"
            f" reflect mel frames [T-{EDGE_FRAMES}, T); the frames between equal mel_constant"
            " bitwise",
            "starts_fps<F>": "int64 (N,), F in 25, 30, 29p97 (= 29.97)",
        },
        "edge_frames": EDGE_FRAMES,
        "fps": list(FPS_VALUES),
        "cases": {},
    }
    cases: dict[str, object] = manifest["cases"]  # type: ignore[assignment]
    mismatches = []
    total = 0
    for path in audio_files():
        arrays, facts = make_case(ref, path)
        name = os.path.splitext(os.path.basename(path))[0]
        if name in cases:
            raise SystemExit(f"two audio files named {name}.*: rename one")
        golden = os.path.join(HERE, f"{name}.npz")
        if args.check:
            with np.load(golden) as committed:
                same = sorted(committed.files) == sorted(arrays) and all(
                    committed[k].dtype == arrays[k].dtype
                    and committed[k].shape == arrays[k].shape
                    and matches(k, committed[k], arrays[k], facts)
                    for k in arrays
                )
            if not same:
                mismatches.append(name)
        else:
            write_npz(golden, arrays)
        facts["golden_sha256"] = sha256(golden)
        facts["golden_bytes"] = os.path.getsize(golden)
        total += os.path.getsize(golden)
        cases[name] = facts
        windows25 = facts["windows"]["25"]  # type: ignore[index]
        print(
            f"{name:42s} {facts['sample_rate']:6d} Hz x{facts['channels']}"
            f" -> {facts['samples_16k']:6d} samples, mel {facts['mel_shape']},"
            f" N@25={windows25['count']:3d}, pad diff {facts['pad_modes_max_abs_diff']:.3g}"
            f" in frames {facts['pad_modes_differ_in_frames']},"
            f" {facts['golden_bytes'] / 1e3:.0f} kB"
        )
    if args.check:
        if mismatches:
            print(f"golden data differs from the reference for: {', '.join(mismatches)}")
            return 1
        print("golden data matches the reference")
        return 0
    with open(MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
    print(f"{len(cases)} cases, {total / 1e6:.3f} MB of golden data in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
