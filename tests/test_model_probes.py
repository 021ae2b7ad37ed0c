"""tests/model_probes.py: a model is told apart by what it computes, within PROBE_TOL."""

from __future__ import annotations

import numpy as np
import pytest
from model_probes import PROBE_TOL, compare, fingerprint, wenet_probe_input


def test_last_bit_differences_pass_and_real_ones_are_named():
    values = np.linspace(-2, 2, 1000).astype(np.float32)
    want = fingerprint(values)
    assert compare(fingerprint(np.nextafter(values, np.float32(9))), want, "x") == []
    moved = values.copy()
    moved[0] += 10 * PROBE_TOL
    assert compare(fingerprint(moved), want, "x") == ["x: first values differ by 0.001"]
    assert compare(fingerprint(values[:-1]), want, "x") == ["x: shape [999], expected [1000]"]


@pytest.mark.parametrize("name", ["mean", "rms"])
def test_a_moved_summary_is_named(name):
    want = fingerprint(np.ones(10, np.float32))
    got = dict(want, **{name: want[name] + 2 * PROBE_TOL})
    assert [p.split(" ")[1] for p in compare(got, want, "x")] == [name]


def test_the_probe_input_is_made_from_integers():
    chunk = wenet_probe_input()["chunk"]
    assert chunk.shape == (1, 1, 67, 80) and chunk.dtype == np.float32
    assert 5.0 <= chunk.min() and chunk.max() <= 20.0
