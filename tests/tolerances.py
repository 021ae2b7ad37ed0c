"""How tests compare floats that other libraries computed (docs/NUMERICS.md, "Tests on any CPU").

NumPy picks its SIMD kernels (baseline, AVX2, AVX-512, NEON, ...) by CPU at
run time, OpenBLAS its matrix kernels, glibc's libm an FMA or a plain variant
of exp/log/sin/cos, and a decoder (mpg123: SSE or AVX) its synthesis code: the
same call gives results that differ in the last bits from one CPU to another.
So a value computed by NumPy / SciPy / librosa / soxr / libm / ONNX Runtime —
at test time or stored in tests/golden and tests/vectors on another machine —
is compared here with a stated tolerance, never bit for bit. Bit equality is
kept only for this project's own promises, on one machine (stream == batch,
batch-size independence, the core against itself).

Imported as ``import tolerances`` by the tests (``tests/`` is on ``sys.path``)
and by the generators tools/make_stage_vectors.py and tests/golden/make_golden.py.
"""

from __future__ import annotations

import numpy as np

#: Two runs of the same NumPy / SciPy / librosa computation on different CPUs
#: agree to within this many ulps of the array's largest |value| (the rounding
#: unit of its biggest element, in its own dtype). Measured on the staged
#: vectors: <= 4 between NumPy's baseline, AVX2 and AVX-512 kernels and
#: OpenBLAS's Nehalem and Haswell kernels. 32 ulps is 7e-15 relative, 1e3x below
#: the tightest port tolerance (1e-12 relative), so a stored array within it is
#: as good as a fresh one.
SAME_COMPUTATION_ULPS = 32

#: A stored array (tests/vectors, tests/golden) is as good as a fresh run of its
#: generator if they differ by less than this fraction of the tolerance the array is
#: used with. Needed where rounding noise is amplified: the dB of a quiet mel band
#: carries the FFT's absolute error (libm's sin/cos in pocketfft's twiddles, FMA or
#: not) divided by the band's tiny value, up to 4e-12 dB measured, 296 ulps of 120 dB.
REGENERATED_FRACTION = 0.01

#: One correctly rounded operation (pre-emphasis ``x[n] - 0.97 x[n-1]``, a
#: window product) computed by two implementations: a fused multiply-add in
#: either one moves the result by at most one rounding of the operands' scale.
ONE_ROUNDING_ULPS = 1

#: Float32 values (the mel filterbank weights, a clip's float32 samples)
#: rounded from float64 values that differ in their last bits: the rounding
#: can go the other way, by one float32 ulp of the value.
FLOAT32_ROUNDING_ULPS = 1

#: Decoded and resampled audio samples (full scale 1.0) from a build of
#: libsndfile / mpg123 / libvorbis / soxr for another CPU: 8 float32 ulps at
#: full scale. Different rounding (mpg123's SSE or AVX synthesis, chosen at
#: run time; fused multiply-adds in other architectures' builds) stays far
#: below it; a real change does not: soxr's 'MQ' or 'VHQ' instead of 'HQ'
#: moves samples by 1e-3, a gain of 1.0001 by 5e-5.
DECODED_SAMPLE_ABS = 2.0**-20


#: libsndfile subtypes decoded without any rounding: integers scaled by a power of two, or floats.
LOSSLESS_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


def decoded_sample_tolerance(file_format: str, sample_rate: int) -> float:
    """Tolerance for decoded 16 kHz samples of a file against samples stored elsewhere.

    ``file_format`` is libsndfile's ``"FORMAT/SUBTYPE"`` (``"WAV/PCM_16"``). 0.0 for a
    lossless file already at 16 kHz (nothing rounds: no lossy decoder, no resampler),
    else `DECODED_SAMPLE_ABS`.
    """
    subtype = file_format.split("/")[-1]
    if sample_rate == 16000 and subtype in LOSSLESS_SUBTYPES:
        return 0.0
    return DECODED_SAMPLE_ABS


def max_abs_diff(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got - want|`` in float64 (0.0 for empty arrays)."""
    got64 = np.asarray(got, dtype=np.float64)
    want64 = np.asarray(want, dtype=np.float64)
    assert got64.shape == want64.shape, f"shape {got64.shape}, reference {want64.shape}"
    if got64.size == 0:
        return 0.0
    return float(np.abs(got64 - want64).max())


def scale_ulp(want: np.ndarray) -> float:
    """One ulp of the largest |value| of ``want``, in its own float dtype."""
    want = np.asarray(want)
    dtype = want.dtype if want.dtype.kind == "f" else np.dtype(np.float64)
    scale = float(np.abs(want).max()) if want.size else 0.0
    return float(np.spacing(dtype.type(scale)))


def ulps_of_scale(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got - want|`` in ulps of the largest |value| of ``want``."""
    return max_abs_diff(got, want) / scale_ulp(want)


def regenerated_tolerance(want: np.ndarray, used_with_abs: float) -> float:
    """Allowed ``max |fresh - stored|`` for a stored float64 array that is used with an
    absolute tolerance ``used_with_abs``: `SAME_COMPUTATION_ULPS` ulps of its largest
    |value| or `REGENERATED_FRACTION` of ``used_with_abs``, whichever is larger."""
    return max(SAME_COMPUTATION_ULPS * scale_ulp(want), REGENERATED_FRACTION * used_with_abs)


def ulps_elementwise(got: np.ndarray, want: np.ndarray) -> float:
    """The largest ``|got - want|`` measured in ulps of each element of ``want``
    (in ``want``'s dtype; an exact zero has the smallest subnormal as its ulp)."""
    want = np.asarray(want)
    diff = np.abs(np.asarray(got, dtype=np.float64) - want.astype(np.float64))
    if diff.size == 0:
        return 0.0
    ulp = np.spacing(np.abs(want)).astype(np.float64)
    return float((diff / ulp).max())


def assert_scale_ulps(got: np.ndarray, want: np.ndarray, ulps: float, what: str) -> None:
    """Assert ``max |got - want| <= ulps * ulp(max |want|)``."""
    err = max_abs_diff(got, want)
    bound = ulps * scale_ulp(want)
    assert err <= bound, (
        f"{what}: max abs difference {err:.3g} = {err / scale_ulp(want):.3g} ulps of the"
        f" largest reference value, tolerance {ulps:g} ulps ({bound:.3g})"
    )


def assert_elementwise_ulps(got: np.ndarray, want: np.ndarray, ulps: float, what: str) -> None:
    """Assert every element is within ``ulps`` ulps of the reference element."""
    worst = ulps_elementwise(got, want)
    if worst > ulps:
        diff = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))
        raise AssertionError(
            f"{what}: {int(np.count_nonzero(diff))} of {diff.size} values differ, worst by"
            f" {worst:.3g} ulps of the reference value (tolerance {ulps:g} ulp)"
        )
