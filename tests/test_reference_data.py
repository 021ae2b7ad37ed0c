"""The guard of tests/reference_data.py: stored reference numbers only for ``numeric`` tests."""

from __future__ import annotations

import os

import pytest
import reference_data

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
SOME_GOLDEN = os.path.join(GOLDEN, "speech_16k_s16_mono.npz")


def test_reading_reference_numbers_without_the_mark_fails_the_test():
    with pytest.raises(pytest.fail.Exception, match="is not marked numeric: add @pytest.mark"):
        reference_data.load_npz(SOME_GOLDEN)


def test_golden_case_arrays_are_guarded_too(golden_case):
    assert golden_case.samples.ndim == 1  # as input: allowed
    with pytest.raises(pytest.fail.Exception, match="is not marked numeric"):
        golden_case.arrays  # noqa: B018


@pytest.mark.numeric
def test_a_numeric_test_reads_them():
    assert "samples" in reference_data.load_npz(SOME_GOLDEN)
