"""`load_audio` against ``librosa.load(path, sr=16000)[0]`` (librosa 0.11.0).

Tolerance: none. The loader must return the very same float32 samples as the
reference (``np.array_equal``, same length, same dtype) for every golden case
and for every way of passing the input: a path string, a ``pathlib.Path``, an
open binary file and an ``io.BytesIO``.
"""

from __future__ import annotations

import hashlib
import io
import pathlib

import numpy as np

from synctalk_audio import load_audio, load_audio_with_info


def assert_same_samples(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert isinstance(got, np.ndarray), f"{what}: got {type(got).__name__}, not an ndarray"
    assert got.dtype == np.float32, f"{what}: dtype {got.dtype}, reference float32"
    assert got.ndim == 1, f"{what}: shape {got.shape}, reference 1-D"
    assert got.shape == want.shape, f"{what}: {got.shape[0]} samples, reference {want.shape[0]}"
    if not np.array_equal(got, want):
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        raise AssertionError(
            f"{what}: must equal librosa.load sample for sample (tolerance 0), but"
            f" {int(np.count_nonzero(diff))} of {want.shape[0]} samples differ,"
            f" max abs diff {diff.max():.3g} at index {int(diff.argmax())}"
        )


def test_input_file_is_the_one_the_golden_data_was_made_from(golden_case):
    with open(golden_case.path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == golden_case.facts["file_sha256"], (
        f"{golden_case.facts['file']} changed since tests/golden was generated:"
        " run python tests/golden/make_golden.py"
    )


def test_load_path_str(golden_case):
    assert_same_samples(
        load_audio(golden_case.path), golden_case.samples, f"{golden_case.name} (str path)"
    )


def test_load_pathlib(golden_case):
    got = load_audio(pathlib.Path(golden_case.path))
    assert_same_samples(got, golden_case.samples, f"{golden_case.name} (pathlib.Path)")


def test_load_open_file(golden_case):
    with open(golden_case.path, "rb") as f:
        got = load_audio(f)
    assert_same_samples(got, golden_case.samples, f"{golden_case.name} (open(path, 'rb'))")


def test_load_bytesio(golden_case):
    with open(golden_case.path, "rb") as f:
        buf = io.BytesIO(f.read())
    assert_same_samples(load_audio(buf), golden_case.samples, f"{golden_case.name} (io.BytesIO)")


def test_load_with_info(golden_case):
    samples, info = load_audio_with_info(golden_case.path)
    assert_same_samples(samples, golden_case.samples, f"{golden_case.name} (load_audio_with_info)")
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
