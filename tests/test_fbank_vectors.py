"""The C++ core's Kaldi fbank against the staged vectors of tests/vectors_fbank/ (for a port).

The vectors were written by tools/make_fbank_vectors.py from the NumPy float64
reference (tests/reference/kaldi_fbank.py), never from the core; each stage
carries the tolerance a port must meet (index.json). The core, a port too,
must meet every one. A last test checks that the stored vectors still match a
fresh run of the reference within the last-bit differences between CPUs
(tests/tolerances.py), so they cannot silently go stale.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import reference_data
import tolerances

from synctalk_audio.frontends.fbank import fbank_processor

pytestmark = pytest.mark.numeric

TESTS = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(TESTS, "vectors_fbank")
ROOT = os.path.dirname(TESTS)
with open(os.path.join(VECTORS, "index.json"), encoding="utf-8") as _f:
    INDEX = json.load(_f)


def load(name: str) -> np.ndarray:
    return reference_data.load_npy(os.path.join(VECTORS, INDEX["files"][name]["file"]))


def within(got: np.ndarray, name: str) -> None:
    want = load(name)
    tol = INDEX["files"][name]["tolerance"]
    assert got.shape == want.shape, f"{name}: shape {got.shape}, vector {want.shape}"
    if tol.get("exact"):
        assert np.array_equal(got, want), f"{name}: must be exact ({tol['rule']})"
        return
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
    assert err <= tol["abs"], f"{name}: {err:.3g} > {tol['abs']:.3g} ({tol['rule']})"


def test_core_meets_every_stage():
    proc = fbank_processor()
    wave = load("input")
    assert wave.dtype == np.float32 and np.array_equal(wave, np.trunc(wave))
    within(proc.window, "window")
    # A port embeds the banks (exact for it). The core computes them with libm's
    # log, whose FMA or plain variant (per CPU) may round a float32 weight the
    # other way: 1 ulp.
    banks = load("banks")
    assert INDEX["files"]["banks"]["tolerance"]["exact"] and proc.mel_banks.shape == banks.shape
    tolerances.assert_elementwise_ulps(
        proc.mel_banks, banks, tolerances.FLOAT32_ROUNDING_ULPS, "banks"
    )
    stages = proc.stages(wave)
    for name in ("frames", "dc_removed", "preemphasis", "windowed", "power", "energy", "log"):
        within(stages[name], name)
    spectrum = stages["spectrum"]
    within(np.stack([spectrum.real, spectrum.imag], axis=-1), "spectrum")
    within(proc.fbank(wave, "float64"), "log")
    # The clip ends in silence: its last frames sit on the floor.
    assert np.all(load("log")[-1] == np.log(np.float64(np.finfo(np.float32).eps)))


def test_vectors_match_a_fresh_run_of_the_reference():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import make_fbank_vectors
    finally:
        sys.path.remove(os.path.join(ROOT, "tools"))
    fresh = make_fbank_vectors.build()
    assert sorted(fresh) == sorted(INDEX["files"])
    for name, value in fresh.items():
        stored = load(name)
        assert stored.shape == value.shape and stored.dtype == value.dtype, name
        if value.dtype == np.float32:
            assert tolerances.ulps_elementwise(value, stored) <= tolerances.FLOAT32_ROUNDING_ULPS
            continue
        used_with = INDEX["files"][name]["tolerance"]["abs"]
        allowed = tolerances.regenerated_tolerance(stored, used_with)
        assert float(np.abs(value - stored).max()) <= allowed, name


def test_vectors_are_complete_and_small():
    assert INDEX["format"] == "synctalk-fbank-vectors/1"
    names = {"input", "window", "banks", "frames", "dc_removed", "preemphasis", "windowed"}
    assert set(INDEX["files"]) == names | {"spectrum", "power", "energy", "log"}
    total = sum(os.path.getsize(os.path.join(VECTORS, f)) for f in os.listdir(VECTORS))
    assert total < 0.8e6, f"fbank vectors take {total / 1e6:.2f} MB, budget 0.8 MB"
