#!/usr/bin/env python3
"""How far apart are the Kaldi fbank implementations on real speech? (the ``wenet`` front end)

    python tools/compare_fbank.py [--json out.json] [--seconds 60]

Ultralight-Digital-Human's WeNet features start with
``torchaudio.compliance.kaldi.fbank`` on float32 (upstream). Candidates for
this project's own front end are kaldi-native-fbank (PyPI, C++ with pybind11,
float32 inside) and a float64 implementation of Kaldi's definition
(tests/reference/kaldi_fbank.py is that definition in NumPy: a float64 C++
port would equal it up to the last bits). This measures, on the waveform
upstream feeds the fbank (first channel, 16 kHz, ``x * 32767`` truncated to
int16, 32 * 160 zeros before and 35 * 160 after: tests/reference/ultralight.py),
the max, mean and 99.9th percentile of |difference| over all frames and
bins, and the max over the bins whose log energy (torchaudio float64) is at
least 5, i.e. leaving out near-silent bins where float32 rounding of tiny
energies is magnified by the log, of

- torchaudio float32 vs torchaudio float64,
- kaldi-native-fbank vs torchaudio float32 and vs float64
  (dither 0, 80 bins, energy_floor 0, snip_edges, the rest at Kaldi's
  defaults: povey window, DC removal, pre-emphasis 0.97, 512-point FFT, power,
  20 Hz to Nyquist),
- NumPy float64 (float64 mel filters) vs torchaudio float64 and float32,
- NumPy float64 with torchaudio's own mel filters (float32, as
  torchaudio builds them even for float64 input) vs torchaudio float64,

for each speech file of tests/data and tests/data/modes, and all together;
then what each fbank does to the ``wenet`` features: the max |difference|
of upstream's chunk loop through ``--encoder`` (default: the random test
stand-in models/test_wenet_encoder.onnx, if present) fed with each fbank
against the same loop fed with torchaudio float32 (upstream); then the time
of one run of each on ``--seconds`` of speech (the long clip repeated; one
run, so informational only).

Needs torch, kaldi-native-fbank, librosa, soundfile, and torchaudio's
kaldi.py (fetched once; see tests/reference/ultralight.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
sys.path.insert(0, TESTS)

from reference import kaldi_fbank, ultralight  # noqa: E402

SPEECH = (
    "data/speech_16k_s16_mono.wav",
    "data/speech_16k_s16_loud_edges.wav",
    "data/speech_44k1_stereo_s24.wav",
    "data/speech_22k05_stereo_extensible_chunks.wav",
    "data/speech_8k_u8.wav",
    "data/speech_48k_float32.wav",
    "data/speech_16k.flac",
    "data/modes/speech_16k_long_21s.wav",
)
LONG = "data/modes/speech_16k_long_21s.wav"
UPSTREAM = "torchaudio float32 (upstream)"


def torchaudio32(wave: np.ndarray) -> np.ndarray:
    import torch

    return ultralight.torchaudio_fbank(wave, torch.float32).astype(np.float64)


def torchaudio64(wave: np.ndarray) -> np.ndarray:
    import torch

    return ultralight.torchaudio_fbank(wave, torch.float64)


def knf_fbank(wave: np.ndarray) -> np.ndarray:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.frame_length_ms = 25
    opts.frame_opts.frame_shift_ms = 10
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.remove_dc_offset = True
    opts.mel_opts.num_bins = 80
    opts.mel_opts.low_freq = 20
    opts.mel_opts.high_freq = 0
    opts.mel_opts.is_librosa = False
    opts.mel_opts.htk_mode = False
    opts.energy_floor = 0.0
    opts.use_energy = False
    opts.use_power = True
    opts.use_log_fbank = True
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, wave.astype(np.float32))
    fbank.input_finished()
    return np.array([fbank.get_frame(i) for i in range(fbank.num_frames_ready)], dtype=np.float64)


def numpy64(wave: np.ndarray) -> np.ndarray:
    return kaldi_fbank.kaldi_fbank(wave)


def numpy64_torchaudio_banks(wave: np.ndarray) -> np.ndarray:
    kaldi = ultralight.load_torchaudio_kaldi()
    banks, _ = kaldi.get_mel_banks(80, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)
    return kaldi_fbank.kaldi_fbank(wave, banks=banks.numpy())


IMPLEMENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "torchaudio float32 (upstream)": torchaudio32,
    "torchaudio float64": torchaudio64,
    "kaldi-native-fbank": knf_fbank,
    "NumPy float64": numpy64,
    "NumPy float64, torchaudio's float32 mel filters": numpy64_torchaudio_banks,
}
PAIRS = (
    ("torchaudio float32 (upstream)", "torchaudio float64"),
    ("kaldi-native-fbank", "torchaudio float32 (upstream)"),
    ("kaldi-native-fbank", "torchaudio float64"),
    ("NumPy float64", "torchaudio float64"),
    ("NumPy float64", "torchaudio float32 (upstream)"),
    ("NumPy float64, torchaudio's float32 mel filters", "torchaudio float64"),
)


def upstream_wave(relpath: str) -> np.ndarray:
    speech, _ = ultralight.read_first_channel_16k(os.path.join(TESTS, relpath))
    return ultralight.wenet_waveform(speech)


LOUD = 5.0  # log energy threshold of the "max where log E >= 5" column


def stats(diff: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    loud = reference >= LOUD
    return {
        "max": float(diff.max()),
        "mean": float(diff.mean()),
        "p99.9": float(np.quantile(diff, 0.999)),
        "max_loud": float(diff[loud].max()) if loud.any() else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="length of the timing input (default: 60)"
    )
    parser.add_argument(
        "--encoder",
        default=os.path.join(ROOT, "models", "test_wenet_encoder.onnx"),
        help="WeNet encoder ONNX for the feature comparison (default: %(default)s; skipped,"
        " with a note, if the file does not exist)",
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    diffs: dict[tuple[str, str], list[np.ndarray]] = {pair: [] for pair in PAIRS}
    references: list[np.ndarray] = []
    per_file: dict[str, dict[str, dict[str, float]]] = {}
    session = None
    if os.path.isfile(args.encoder):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(args.encoder, options, providers=["CPUExecutionProvider"])
    feature_diffs: dict[str, float] = {name: 0.0 for name in IMPLEMENTATIONS}
    for relpath in SPEECH:
        wave = upstream_wave(relpath)
        results = {name: fn(wave) for name, fn in IMPLEMENTATIONS.items()}
        if session is not None:
            upstream = ultralight.wenet_encode(results[UPSTREAM].astype(np.float32), session)
            for name, feat in results.items():
                got = ultralight.wenet_encode(feat.astype(np.float32), session)
                diff = float(np.max(np.abs(got - upstream)))
                feature_diffs[name] = max(feature_diffs[name], diff)
        shapes = {r.shape for r in results.values()}
        if len(shapes) != 1:
            raise SystemExit(f"{relpath}: frame counts differ: {shapes}")
        per_file[relpath] = {}
        reference = results["torchaudio float64"].ravel()
        references.append(reference)
        for a, b in PAIRS:
            diff = np.abs(results[a] - results[b]).ravel()
            diffs[(a, b)].append(diff)
            per_file[relpath][f"{a} vs {b}"] = stats(diff, reference)

    print("| comparison | max abs diff | mean abs diff | 99.9th pct | max where log E >= 5 |")
    print("| --- | --- | --- | --- | --- |")
    overall = {}
    all_references = np.concatenate(references)
    for a, b in PAIRS:
        figures = stats(np.concatenate(diffs[(a, b)]), all_references)
        overall[f"{a} vs {b}"] = figures
        print(
            f"| {a} vs {b} | {figures['max']:.3g} | {figures['mean']:.3g}"
            f" | {figures['p99.9']:.3g} | {figures['max_loud']:.3g} |"
        )
    frames = sum(d.size for d in diffs[PAIRS[0]]) // 80
    share = float(np.mean(all_references >= LOUD))
    print(
        f"\n{len(SPEECH)} files, {frames} frames x 80 bins (natural-log energies;"
        f" {share:.1%} of the bins have log E >= {LOUD:g})\n"
    )

    print("per file, max abs diff:")
    for relpath, table in per_file.items():
        cells = ", ".join(f"{k.split(' (')[0]}: {v['max']:.2g}" for k, v in table.items())
        print(f"  {relpath}: {cells}")

    if session is not None:
        print(f"\nwenet features through {os.path.relpath(args.encoder, ROOT)}, max |diff| against")
        print("the same chunk loop fed with torchaudio float32 (upstream), all files:")
        for name, diff in feature_diffs.items():
            print(f"  {name}: {diff:.3g}")
    else:
        print(f"\n(no {args.encoder}: wenet feature comparison skipped)")

    long_wave = upstream_wave(LONG)
    n = int(args.seconds * 16000)
    timing_wave = np.resize(long_wave, n)
    timings = {}
    print(f"\ntime of one run on {args.seconds:g} s ({n} samples, one thread):")
    for name, fn in IMPLEMENTATIONS.items():
        started = time.perf_counter()
        out = fn(timing_wave)
        timings[name] = time.perf_counter() - started
        print(f"  {name}: {timings[name] * 1000:.1f} ms ({out.shape[0]} frames)")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "overall": overall,
                    "per_file": per_file,
                    "wenet_features_max_diff_vs_upstream": feature_diffs if session else None,
                    "encoder": args.encoder if session else None,
                    "timing_seconds": timings,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
