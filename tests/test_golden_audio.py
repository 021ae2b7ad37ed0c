"""`load_audio` against ``librosa.load(path, sr=16000)[0]`` (librosa 0.11.0).

Two comparisons, for every golden case and (for the golden data) every way of
passing the input — a path string, a ``pathlib.Path``, an open binary file and
an ``io.BytesIO``:

- with ``librosa.load`` run now, on this machine: the very same float32
  samples (tolerance 0). Both run the same decoder (libsndfile), the same
  channel mean and the same resampler (soxr 'HQ') in this process, so they
  agree bit for bit on any CPU: that is this package's promise.
- with the golden samples stored in tests/golden (made on another machine):
  bit for bit where no library rounds anything — lossless PCM / float / FLAC
  files at 16 kHz, whose integer samples are scaled by a power of two — and
  otherwise within ``tolerances.DECODED_SAMPLE_ABS`` (2^-20 at full scale 1):
  mpg123 picks SSE or AVX synthesis code by CPU at run time, and decoders and
  soxr built for another architecture may fuse multiply-adds.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import sys

import numpy as np
import pytest
import tolerances

from synctalk_audio import load_audio, load_audio_with_info

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import upstream  # noqa: E402  (tests/reference/upstream.py: librosa.load, as SyncTalk_2D calls it)

pytestmark = pytest.mark.numeric


def assert_same_samples(got: np.ndarray, want: np.ndarray, what: str, tol: float = 0.0) -> None:
    assert isinstance(got, np.ndarray), f"{what}: got {type(got).__name__}, not an ndarray"
    assert got.dtype == np.float32, f"{what}: dtype {got.dtype}, reference float32"
    assert got.ndim == 1, f"{what}: shape {got.shape}, reference 1-D"
    assert got.shape == want.shape, f"{what}: {got.shape[0]} samples, reference {want.shape[0]}"
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if diff.size and diff.max() > tol:
        raise AssertionError(
            f"{what}: must equal librosa.load sample for sample (tolerance {tol:g}), but"
            f" {int(np.count_nonzero(diff))} of {want.shape[0]} samples differ,"
            f" max abs diff {diff.max():.3g} at index {int(diff.argmax())}"
        )


def assert_golden_samples(got: np.ndarray, golden_case, how: str) -> None:
    assert_same_samples(
        got,
        golden_case.samples,
        f"{golden_case.name} ({how}) vs tests/golden",
        tolerances.decoded_sample_tolerance(
            golden_case.facts["format"], golden_case.facts["sample_rate"]
        ),
    )


def test_load_equals_librosa_load_on_this_machine(golden_case):
    want = upstream.load_wav(golden_case.path)
    assert_same_samples(load_audio(golden_case.path), want, f"{golden_case.name} vs librosa.load")


def test_input_file_is_the_one_the_golden_data_was_made_from(golden_case):
    with open(golden_case.path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == golden_case.facts["file_sha256"], (
        f"{golden_case.facts['file']} changed since tests/golden was generated:"
        " run python tests/golden/make_golden.py"
    )


def test_load_path_str(golden_case):
    assert_golden_samples(load_audio(golden_case.path), golden_case, "str path")


def test_load_pathlib(golden_case):
    got = load_audio(pathlib.Path(golden_case.path))
    assert_golden_samples(got, golden_case, "pathlib.Path")


def test_load_open_file(golden_case):
    with open(golden_case.path, "rb") as f:
        got = load_audio(f)
    assert_golden_samples(got, golden_case, "open(path, 'rb')")


def test_load_bytesio(golden_case):
    with open(golden_case.path, "rb") as f:
        buf = io.BytesIO(f.read())
    assert_golden_samples(load_audio(buf), golden_case, "io.BytesIO")


def test_load_with_info(golden_case):
    samples, info = load_audio_with_info(golden_case.path)
    assert_golden_samples(samples, golden_case, "load_audio_with_info")
    facts = golden_case.facts
    assert (info.sample_rate, info.channels, info.frames) == (
        facts["sample_rate"],
        facts["channels"],
        facts["frames"],
    ), f"{golden_case.name}: AudioInfo {info} vs reference facts {facts}"
    assert info.format == facts["format"], f"{golden_case.name}: format {info.format}"
    assert info.duration == facts["frames"] / facts["sample_rate"]


def test_reference_length_rule(golden_case):
    """The golden length is ceil(n * 16000 / sr) (a check of the golden data itself)."""
    facts = golden_case.facts
    expected = -(-facts["frames"] * 16000 // facts["sample_rate"])
    assert golden_case.samples.shape[0] == expected == facts["samples_16k"], golden_case.name
