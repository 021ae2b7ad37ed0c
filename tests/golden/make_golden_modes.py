#!/usr/bin/env python3
"""Golden data for the ``hubert`` and ``wenet`` modes, from the upstream logic.

How to run (from the repository root; needs torch, transformers, onnxruntime,
librosa, soundfile; the torchaudio wheel is fetched once, see
tests/reference/ultralight.py):

    python models/make_test_hubert.py                # models/test_hubert/ (seed 0)
    python models/make_test_wenet.py                 # models/test_wenet_encoder.onnx (seed 0)
    python tests/golden/make_golden_modes.py         # rewrite tests/golden/modes/
    python tests/golden/make_golden_modes.py --check # recompute, compare with the committed files

For each case (an audio file of tests/data or tests/data/modes, see CASES)
this writes tests/golden/modes/<stem>.npz holding

- ``hubert``: ``aud_hu.npy`` as upstream's current ``data_utils/hubert.py``
  computes it with the tiny random checkpoint, float32 (ceil(T/2), 2, 1024):
  odd T padded with a zero row. The mid-2025 variant (odd T: last row
  dropped) is ``hubert[:-1]`` when T is odd, so it is not stored again;
- ``wenet``: ``aud_wenet.npy`` as upstream's ``data_utils/wenet_infer.py``
  computes it with the tiny random encoder, float32 (K, 16, 512);
- ``fbank``: upstream's fbank of the padded int16 waveform (F, 80), float32
  (``torchaudio.compliance.kaldi.fbank`` on float32, what the encoder is fed);
- ``fbank64``: the same fbank computed by torchaudio in float64 (clips up to
  3 s only), to say which one another implementation is closer to.

Size: random features do not compress, so an array bigger than its limit
(``LIMITS``: 1.2 MB for hubert, 0.5 MB for wenet) is stored with every row but
only every s-th column of its last axis, ``full[..., ::s]``, s the smallest
power of two that fits; the manifest gives s (``<key>_column_stride``) and the
full shape (``<key>_shape``). A wrong chunking or normalisation changes every
column of the rows it touches, so the sampled columns catch it.

tests/golden/modes/manifest.json records the versions (transformers, torch,
onnxruntime, torchaudio + the SHA-256 of its kaldi.py, librosa, soxr, ...),
the SHA-256 of the model files, the settings (one thread in PyTorch and ONNX
Runtime) and, per case, the input file's facts and T, F, K.

``--check`` recomputes everything and compares it with the committed arrays
(max |diff| per array; non-zero exit above 1e-5 or on a shape change).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTS = os.path.dirname(HERE)
OUT = os.path.join(HERE, "modes")
MANIFEST = os.path.join(OUT, "manifest.json")
sys.path.insert(0, TESTS)
sys.path.insert(0, HERE)

import model_probes  # noqa: E402
from make_golden import sha256, versions, write_npz  # noqa: E402
from reference import ultralight  # noqa: E402

DEFAULT_HUBERT = os.path.join(ROOT, "models", "test_hubert")
DEFAULT_WENET = os.path.join(ROOT, "models", "test_wenet_encoder.onnx")

# (path relative to tests/, what it exercises)
CASES: tuple[tuple[str, str], ...] = (
    ("data/speech_16k_s16_mono.wav", "16 kHz mono, T = 99 odd"),
    ("data/speech_16k_s16_loud_edges.wav", "16 kHz mono, loud first/last samples, T even"),
    ("data/speech_16k_0p25s.wav", "0.25 s"),
    ("data/speech_44k1_stereo_s24.wav", "44.1 kHz stereo 24-bit: first channel, resampled"),
    (
        "data/speech_22k05_stereo_extensible_chunks.wav",
        "22.05 kHz stereo WAVE_FORMAT_EXTENSIBLE: first channel, resampled",
    ),
    ("data/speech_8k_u8.wav", "8 kHz unsigned 8-bit: resampled"),
    ("data/speech_48k_float32.wav", "48 kHz float, peak 1.1: int16 clipping for wenet"),
    ("data/modes/speech_16k_long_21s.wav", "21.3 s: two HuBERT pieces, T = 1067 odd"),
    ("data/modes/speech_16k_400samples.wav", "400 samples: shortest HuBERT input, T = 1"),
)
LIMITS = {"hubert": 1.2e6, "wenet": 0.5e6}
FBANK64_MAX_SECONDS = 3.0
CHECK_TOLERANCE = 1e-5


def column_stride(array: np.ndarray, limit: float) -> int:
    stride = 1
    while array[..., ::stride].nbytes > limit:
        stride *= 2
    return stride


def model_versions() -> dict[str, str]:
    import onnxruntime
    import torch
    import transformers

    source, origin = ultralight.kaldi_source()
    return {
        **versions(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torchaudio_kaldi_py": f"torchaudio {ultralight.TORCHAUDIO_VERSION}"
        f" {ultralight.KALDI_MEMBER}",
        "torchaudio_kaldi_py_sha256": hashlib.sha256(source.encode()).hexdigest(),
    }


def compute_case(relpath: str, hubert_dir: str, wenet_onnx: str) -> tuple[dict, dict]:
    """(arrays, facts) of one case."""
    import soundfile as sf
    import torch

    path = os.path.join(TESTS, relpath)
    info = sf.info(path)
    speech, rate = ultralight.read_first_channel_16k(path)
    length = int(speech.shape[0])

    model, extractor = ultralight.load_hubert(hubert_dir)
    hidden = ultralight.hubert_hidden(speech, model, extractor)
    hubert = ultralight.hubert_features(path, hubert_dir, pad_odd=True)
    dropped = ultralight.hubert_features(path, hubert_dir, pad_odd=False)
    t = hidden.shape[0]
    assert np.array_equal(hubert.reshape(-1, 1024)[:t], hidden)
    assert np.array_equal(dropped, hubert[: t // 2])

    fbank = ultralight.wenet_fbank(speech)
    wenet = ultralight.wenet_features(path, wenet_onnx, threads=1)
    clipped = int(np.count_nonzero(np.abs(speech.astype(np.float32) * 32767) > 32767))
    arrays: dict[str, np.ndarray] = {"fbank": fbank}
    if length / 16000 <= FBANK64_MAX_SECONDS:
        arrays["fbank64"] = ultralight.wenet_fbank(speech, torch.float64)
    facts: dict = {
        "file": relpath,
        "what": dict(CASES)[relpath],
        "file_sha256": sha256(path),
        "rate": int(rate),
        "channels": int(info.channels),
        "frames": int(info.frames),
        "samples_16k": length,
        "hubert_T": int(t),
        "hubert_T_odd": bool(t % 2),
        "wenet_F": int(fbank.shape[0]),
        "wenet_K": int(wenet.shape[0]),
        "wenet_samples_clipped": clipped,
    }
    for key, full in (("hubert", hubert), ("wenet", wenet)):
        stride = column_stride(full, LIMITS[key])
        arrays[key] = np.ascontiguousarray(full[..., ::stride])
        facts[f"{key}_shape"] = list(full.shape)
        facts[f"{key}_column_stride"] = stride
    assert facts["wenet_K"] == ultralight.wenet_count(facts["wenet_F"])
    return arrays, facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hubert", default=DEFAULT_HUBERT, help="HuBERT checkpoint directory")
    parser.add_argument("--wenet", default=DEFAULT_WENET, help="WeNet encoder ONNX file")
    parser.add_argument(
        "--check", action="store_true", help="recompute and compare with the committed files"
    )
    args = parser.parse_args(argv)
    weights = os.path.join(args.hubert, "model.safetensors")
    if not os.path.isfile(weights):
        parser.error(f"{weights} not found: run python models/make_test_hubert.py")
    if not os.path.isfile(args.wenet):
        parser.error(f"{args.wenet} not found: run python models/make_test_wenet.py")

    import torch

    torch.set_num_threads(1)
    hubert_dir = os.path.abspath(args.hubert)
    model, _ = ultralight.load_hubert(hubert_dir)
    manifest: dict = {
        "description": "golden data for the hubert and wenet modes from Ultralight-Digital-Human's"
        " data_utils/hubert.py and data_utils/wenet_infer.py logic (tests/reference/ultralight.py)"
        " with the RANDOM test models; written by tests/golden/make_golden_modes.py",
        "versions": model_versions(),
        "settings": {
            "torch_threads": 1,
            "onnxruntime_intra_op_threads": 1,
            "attn_implementation": str(model.config._attn_implementation),
            "limits_bytes": LIMITS,
            "fbank64_max_seconds": FBANK64_MAX_SECONDS,
            "fbank_args": ultralight.FBANK_ARGS,
        },
        "models": {
            # Identified by what they compute, not by their bytes, which depend on the
            # CPU that made them (tests/model_probes.py).
            "hubert": {
                "made_by": "python models/make_test_hubert.py (--seed 0 --size tiny --arch ctc)",
                **model_probes.manifest_entry("hubert", args.hubert),
            },
            "wenet": {
                "made_by": "python models/make_test_wenet.py (--seed 0 --size tiny)",
                **model_probes.manifest_entry("wenet", args.wenet),
            },
        },
        "layout": {
            "hubert": "float32 (ceil(T/2), 2, 1024)[..., ::hubert_column_stride]; odd T padded"
            " with a zero row; the drop-odd variant is hubert[:T // 2]",
            "wenet": "float32 (K, 16, 512)[..., ::wenet_column_stride]",
            "fbank": "float32 (F, 80): torchaudio kaldi.fbank in float32 (upstream)",
            "fbank64": "float64 (F, 80): torchaudio kaldi.fbank in float64 (clips <= 3 s)",
        },
        "cases": {},
    }
    os.makedirs(OUT, exist_ok=True)
    worst = 0.0
    failed = False
    for relpath, _ in CASES:
        arrays, facts = compute_case(relpath, hubert_dir, os.path.abspath(args.wenet))
        stem = os.path.splitext(os.path.basename(relpath))[0]
        target = os.path.join(OUT, stem + ".npz")
        manifest["cases"][stem] = facts
        if args.check:
            with np.load(target) as committed:
                for key, array in arrays.items():
                    old = committed[key]
                    if old.shape != array.shape:
                        print(f"{stem}.{key}: shape {array.shape}, committed {old.shape}")
                        failed = True
                        continue
                    diff = float(np.max(np.abs(old.astype(np.float64) - array)))
                    worst = max(worst, diff)
                    print(f"{stem}.{key}: max |diff| {diff:.3g}")
                    failed |= diff > CHECK_TOLERANCE
            continue
        write_npz(target, arrays)
        print(
            f"{stem}: T={facts['hubert_T']} F={facts['wenet_F']} K={facts['wenet_K']}"
            f" {os.path.getsize(target) / 1e6:.2f} MB"
        )
    if args.check:
        print(f"worst |diff| {worst:.3g} (tolerance {CHECK_TOLERANCE})")
        return 1 if failed else 0
    with open(MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(CASES)} cases, {total / 1e6:.2f} MB in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
