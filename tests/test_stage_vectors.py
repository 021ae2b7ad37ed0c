"""The C++ core against the staged test vectors of tests/vectors/ (for the iOS port).

The vectors were written by tools/make_stage_vectors.py from the NumPy/librosa
reference (tests/reference_mel.py), never from the core; each stage carries
the tolerance a port must meet (index.json). The core, being a port too,
must meet every one of them, except that its filterbank (computed with libm,
not embedded) may differ from librosa's by one float32 ulp per weight. A last
test checks the vectors on disk still match a fresh run of the reference —
within the last-bit differences between CPUs (tests/tolerances.py), since
NumPy's SIMD kernels and OpenBLAS's are chosen by CPU — so they cannot
silently go stale.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
import pytest
import reference_data
import reference_mel as R
import tolerances

from synctalk_audio import MelOptions
from synctalk_audio.frontends.mel import mel_processor

pytestmark = pytest.mark.numeric

TESTS = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(TESTS, "vectors")
ROOT = os.path.dirname(TESTS)


def load_index() -> dict:
    with open(os.path.join(VECTORS, "index.json"), encoding="utf-8") as f:
        return json.load(f)


INDEX = load_index()
CLIPS = {c["name"]: c for c in INDEX["clips"]}


def load(rel: str) -> np.ndarray:
    arr = reference_data.load_npy(os.path.join(VECTORS, rel))
    assert arr.dtype.byteorder in ("<", "|", "=") and (
        arr.dtype.byteorder != "=" or sys.byteorder == "little"
    ), f"{rel}: not little-endian"
    return arr


def within(got: np.ndarray, want: np.ndarray, tol: dict, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape}, vector {want.shape}"
    if tol.get("exact"):
        assert np.array_equal(got, want), f"{what}: must be exact ({tol['rule']})"
        return
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
    assert err <= tol["abs"], (
        f"{what}: max abs error {err:.3g} > tolerance {tol['abs']:.3g} ({tol['rule']})"
    )


def test_index_is_complete_and_small():
    assert INDEX["format"] == "synctalk-stage-vectors/1"
    assert len(INDEX["clips"]) == 3
    total = 0
    for root, _, files in os.walk(VECTORS):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    assert total < 1.5e6, f"vectors take {total / 1e6:.2f} MB, budget 1.5 MB"
    stages = {"input", *R.STAGE_NAMES, "normalized_reflect_edges"}
    for clip in INDEX["clips"]:
        assert set(clip["stages"]) == stages, clip["name"]
        assert clip["num_frames"] == 1 + clip["num_samples"] // 200
        for name, entry in clip["stages"].items():
            arr = load(entry["file"])
            assert list(arr.shape) == entry["shape"], (clip["name"], name)
            assert arr.dtype.name == entry["dtype"], (clip["name"], name)
            if entry["frames"] != "all":
                assert arr.shape[0] == len(entry["frames"]), (clip["name"], name)
            assert "abs" in entry["tolerance"] and entry["tolerance"]["rule"], (clip["name"], name)


def test_window_and_filterbank():
    proc = mel_processor(MelOptions())
    shared = INDEX["shared"]
    within(proc.window, load(shared["window"]["file"]), shared["window"]["tolerance"], "window")
    fb = load(shared["filterbank"]["file"])
    assert fb.dtype == np.float32 and shared["filterbank"]["tolerance"]["exact"]
    # A port embeds this array (exact). The core computes it with libm, whose exp/log
    # (FMA or not, per CPU) may round the float32 weight the other way: 1 ulp.
    assert proc.filterbank.shape == fb.shape
    tolerances.assert_elementwise_ulps(
        proc.filterbank, fb, tolerances.FLOAT32_ROUNDING_ULPS, "filterbank"
    )


@pytest.mark.parametrize("name", sorted(CLIPS))
@pytest.mark.parametrize("in_dtype", [np.float32, np.float64])
def test_core_stages_meet_vector_tolerances(name, in_dtype):
    clip = CLIPS[name]
    x = load(clip["stages"]["input"]["file"])
    assert x.dtype == np.float32 and len(x) == clip["num_samples"]
    got = mel_processor(MelOptions()).stages(x.astype(in_dtype))
    T = clip["num_frames"]
    for stage, entry in clip["stages"].items():
        if stage in ("input", "normalized_reflect_edges"):
            continue
        want = load(entry["file"])
        g = got[stage]
        assert g.shape[0] == (T if stage != "preemphasis" else clip["num_samples"]), stage
        if entry["frames"] != "all":
            g = g[entry["frames"]]
        if stage == "spectrum":
            g = np.stack([g.real, g.imag], axis=-1)
        within(g, want, entry["tolerance"], f"{name} {stage}")


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_final_mel_and_reflect_edges(name):
    clip = CLIPS[name]
    x = load(clip["stages"]["input"]["file"])
    norm = clip["stages"]["normalized"]
    want = load(norm["file"]).T  # vectors are frame-major; the package returns (80, T)
    for dtype, tol in (
        (np.float64, norm["tolerance"]["abs"]),
        (np.float32, norm["tolerance"]["abs_float32_output"]),
    ):
        got = mel_processor(MelOptions()).melspectrogram(x, np.dtype(dtype).name)
        err = float(np.abs(got.astype(np.float64) - want).max())
        assert err <= tol, f"{name} {np.dtype(dtype)} output: {err:.3g} > {tol:g}"
    edges = clip["stages"]["normalized_reflect_edges"]
    got = mel_processor(MelOptions(pad_mode="reflect")).melspectrogram(x, "float64").T
    within(got[edges["frames"]], load(edges["file"]), edges["tolerance"], f"{name} reflect edges")
    # everywhere else reflect equals constant
    inner = [k for k in range(clip["num_frames"]) if k not in edges["frames"]]
    within(got[inner], load(norm["file"])[inner], norm["tolerance"], f"{name} reflect interior")


def test_vectors_match_a_fresh_run_of_the_reference():
    """Fresh run vs files: float64 arrays within 32 ulps of their largest value or 1% of
    their port tolerance (tolerances.regenerated_tolerance), float32 ones within 1 ulp per
    value: NumPy's log10 and complex abs kernels, OpenBLAS's dgemm and libm's sin/cos
    differ per CPU in the last bits."""
    problems = _generator().check(VECTORS)
    assert not problems, "stale vectors (re-run tools/make_stage_vectors.py): " + "; ".join(
        problems
    )


def test_index_text_is_what_the_generator_writes():
    """index.json's descriptive fields are the generator's own text, not hand edits."""
    generator = _generator()
    assert INDEX["format"] == generator.FORMAT
    assert INDEX["generator"] == "tools/make_stage_vectors.py"
    assert INDEX["reference"] == generator.REFERENCE


def _generator() -> Any:
    """tools/make_stage_vectors.py, imported as a module."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import make_stage_vectors
    finally:
        sys.path.remove(os.path.join(ROOT, "tools"))
    return make_stage_vectors


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_float32_port_tolerance_is_realistic(name):
    """index.json's 'abs_float32_everywhere_port' must hold for a float32-everywhere
    chain (tools/measure_float32.py), and such a chain must NOT meet the float64 budget
    (otherwise the stated tolerances would not separate the two kinds of port)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import measure_float32
    finally:
        sys.path.remove(os.path.join(ROOT, "tools"))
    clip = CLIPS[name]
    x = load(clip["stages"]["input"]["file"])
    norm = clip["stages"]["normalized"]
    err = float(
        np.abs(measure_float32.VARIANTS["float32 everywhere"](x) - load(norm["file"])).max()
    )
    assert err <= norm["tolerance"]["abs_float32_everywhere_port"], f"{name}: {err:.3g}"
    assert err > norm["tolerance"]["abs"], f"{name}: float32 chain within the float64 budget?"
