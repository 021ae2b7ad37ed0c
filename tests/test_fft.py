"""The core's mixed-radix FFT (``synctalk_audio._core.rfft``) against ``numpy.fft.rfft``.

Tolerance: max |X_core - X_numpy| <= 1e-12 * max |X_numpy| (relative to the
largest bin of the transform; an all-zero input must give exactly zero).
Measured worst case over every length below: ~2e-15.

Sizes: every n in 1..256 (every small factorisation, every radix path:
4, 2, 3, 5 and the generic odd-prime butterfly, odd lengths through the
complex path, even lengths through the packed half-length path), the mel size
800 and its neighbours, a prime (997), big powers of two, products of
7, 11, 13, and random sizes up to 3000 by hypothesis.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synctalk_audio import _core

pytestmark = pytest.mark.numeric

RTOL = 1e-12

EXTRA_SIZES = [
    400,
    800,
    997,
    1000,
    1024,
    2310,
    4096,
    12000,
    # prime factors 7, 11, 13 (generic butterfly), alone and mixed with 2, 3, 5
    7,
    49,
    343,
    11,
    121,
    13,
    169,
    77,
    91,
    143,
    1001,
    7 * 11 * 13 * 2,
    7 * 64,
    11 * 80,
    13 * 60,
    2 * 3 * 5 * 7 * 11 * 13,
    7 * 7 * 11 * 4,
    13 * 13 * 8,
    17 * 19,
    2 * 23 * 29,
    799,
    801,
    802,
    798,
    1600,
    3000,
]
ALL_SIZES = list(range(1, 257)) + EXTRA_SIZES


def check_rfft(x: np.ndarray, what: str) -> float:
    """Assert the core rfft of ``x`` equals numpy's to RTOL; return the relative error."""
    got = _core.rfft(x)
    want = np.fft.rfft(x)
    assert got.dtype == np.complex128, f"{what}: dtype {got.dtype}"
    assert got.shape == want.shape == (len(x) // 2 + 1,), (
        f"{what}: shape {got.shape} vs {want.shape}"
    )
    scale = float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    if scale == 0.0:
        assert err == 0.0, f"{what}: all-zero input gave max |X| = {err:.3g}, want exactly 0"
        return 0.0
    rel = err / scale
    k = int(np.abs(got - want).argmax())
    assert rel <= RTOL, (
        f"{what}: max |X_core - X_numpy| / max |X_numpy| = {rel:.3g} > tolerance {RTOL:g}"
        f" (worst bin {k}: core {got[k]!r}, numpy {want[k]!r})"
    )
    return rel


@pytest.mark.parametrize("n", ALL_SIZES)
def test_random_input(n):
    rng = np.random.default_rng(n)
    check_rfft(rng.standard_normal(n), f"n={n} gaussian")
    check_rfft(rng.uniform(-1e3, 1e3, n), f"n={n} uniform +-1e3")
    check_rfft(rng.standard_normal(n) * 1e-200, f"n={n} gaussian * 1e-200")


@pytest.mark.parametrize("n", ALL_SIZES)
def test_special_inputs(n):
    impulse = np.zeros(n)
    impulse[0] = 1.0
    check_rfft(impulse, f"n={n} impulse at 0")
    shifted = np.zeros(n)
    shifted[n // 3] = -2.5
    check_rfft(shifted, f"n={n} impulse at n//3")
    check_rfft(np.full(n, 0.75), f"n={n} constant")
    check_rfft(np.where(np.arange(n) % 2 == 0, 1.0, -1.0), f"n={n} alternating +-1")
    check_rfft(np.zeros(n), f"n={n} zeros")
    t = np.arange(n)
    check_rfft(np.cos(2 * np.pi * 3 * t / n), f"n={n} cosine on bin 3")
    check_rfft(np.arange(n, dtype=np.float64), f"n={n} ramp")


def test_impulse_is_flat_and_constant_is_dc():
    """Exact structure, not just closeness: an impulse at 0 has every bin 1 + 0j and a
    constant puts n * c in bin 0 — up to the twiddle rounding in other bins."""
    for n in (1, 2, 3, 4, 5, 8, 16, 800):
        x = np.zeros(n)
        x[0] = 1.0
        got = _core.rfft(x)
        assert np.allclose(got, 1.0, rtol=0, atol=1e-15), f"n={n}: impulse spectrum {got[:4]}"
        got = _core.rfft(np.full(n, 2.0))
        assert abs(got[0] - 2.0 * n) <= 1e-12 * n, f"n={n}: DC bin {got[0]}"
        assert np.abs(got[1:]).max(initial=0.0) <= 1e-12 * n, f"n={n}: non-DC bins of a constant"


def test_linearity_and_nyquist_real():
    rng = np.random.default_rng(7)
    for n in (800, 798, 2310):
        a, b = rng.standard_normal(n), rng.standard_normal(n)
        lhs = _core.rfft(2.0 * a - 3.0 * b)
        rhs = 2.0 * _core.rfft(a) - 3.0 * _core.rfft(b)
        assert np.abs(lhs - rhs).max() <= 1e-12 * np.abs(rhs).max(), f"n={n}: not linear"
        X = _core.rfft(a)
        # bin 0 is real; so is the Nyquist bin of an even length (up to twiddle rounding)
        assert X[0].imag == 0.0, f"n={n}: DC bin has imaginary part {X[0].imag}"
        assert abs(X[-1].imag) <= 1e-12 * np.abs(X).max(), f"n={n}: Nyquist imag {X[-1].imag}"


def test_parseval():
    rng = np.random.default_rng(11)
    for n in (800, 801, 997, 4096):
        x = rng.standard_normal(n)
        X = _core.rfft(x)
        full = np.abs(X) ** 2
        weights = np.full(len(X), 2.0)
        weights[0] = 1.0
        if n % 2 == 0:
            weights[-1] = 1.0
        energy = float((weights * full).sum() / n)
        assert energy == pytest.approx(float((x**2).sum()), rel=1e-12), f"n={n}"


MAX_PRIME_FACTOR = 1024  # the core refuses lengths with a larger prime factor


def largest_prime_factor(n: int) -> int:
    largest, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return n if n > 1 else largest


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=1, max_value=3000).filter(
        lambda n: largest_prime_factor(n) <= MAX_PRIME_FACTOR
    ),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    scale=st.sampled_from([1e-12, 1e-3, 1.0, 1e3, 1e12]),
    kind=st.sampled_from(["gaussian", "uniform", "sparse", "tone"]),
)
def test_random_sizes(n, seed, scale, kind):
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        x = rng.standard_normal(n)
    elif kind == "uniform":
        x = rng.uniform(-1.0, 1.0, n)
    elif kind == "sparse":
        x = np.zeros(n)
        idx = rng.integers(0, n, size=max(1, n // 50))
        x[idx] = rng.standard_normal(idx.size)
    else:
        t = np.arange(n)
        x = np.sin(2 * np.pi * rng.uniform(0, 0.5) * t + rng.uniform(0, 2 * np.pi))
    check_rfft(x * scale, f"n={n} {kind} * {scale:g} (seed {seed})")


def test_core_rfft_refuses_bad_input():
    with pytest.raises(TypeError, match="float64"):
        _core.rfft(np.zeros(8, dtype=np.float32))
    with pytest.raises(ValueError, match="1-D"):
        _core.rfft(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="empty"):
        _core.rfft(np.zeros(0))
    with pytest.raises(ValueError, match="contiguous"):
        _core.rfft(np.zeros(16)[::2])
    with pytest.raises(TypeError):
        _core.rfft(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1031, 2 * 1031, 2179, 1_000_003])
def test_lengths_with_a_huge_prime_factor_are_refused(n):
    """A prime factor p costs p^2 work; above 1024 the core refuses rather than hang."""
    with pytest.raises(ValueError, match=f"prime factor {largest_prime_factor(n)}"):
        _core.rfft(np.zeros(n))


def test_largest_allowed_prime_works():
    n = 1021  # prime, <= 1024
    x = np.random.default_rng(0).standard_normal(n)
    want = np.fft.rfft(x)
    assert np.abs(_core.rfft(x) - want).max() <= RTOL * np.abs(want).max()
