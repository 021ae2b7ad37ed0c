"""Kaldi's log mel filterbank (``compute-fbank-feats``) in NumPy, float64, from its definition.

The settings are the ones Ultralight-Digital-Human's WeNet front end passes to
``torchaudio.compliance.kaldi.fbank`` (80 bins, 25 ms / 10 ms at 16 kHz,
dither 0, energy_floor 0) with the rest at Kaldi's defaults. Per frame of
400 samples taken every 160 (``snip_edges``: F = 1 + (N - 400) // 160, no
frame past the end):

1. remove the frame's mean (``remove_dc_offset``);
2. pre-emphasis 0.97 backwards: ``x[j] -= 0.97 * x[j - 1]`` for j = 399 .. 1,
   then ``x[0] -= 0.97 * x[0]``;
3. multiply by the povey window ``(0.5 - 0.5 * cos(2 pi j / 399)) ** 0.85``
   (its first and last weights are 0, so the special case of ``x[0]`` in
   step 2 has no effect on the result);
4. zero-pad to 512, real FFT, power ``re^2 + im^2`` (257 bins);
5. 80 triangular mel filters on Kaldi's mel scale ``1127 ln(1 + f / 700)``,
   equally spaced in mel from 20 Hz to 8000 Hz (Nyquist): filter b spans
   the mels ``left = m20 + b d``, ``centre = left + d``, ``right = left + 2 d``
   with ``d = (m8000 - m20) / 81``; FFT bin k < 256 (frequency k * 16000 /
   512) weighs ``max(0, min((m - left) / (centre - left), (right - m) /
   (right - centre)))``; bin 256 (Nyquist) weighs 0;
6. ``log(max(energy, FLT_EPSILON))`` (FLT_EPSILON = 2^-23: silence gives
   -15.942385...).

Everything is float64, so this is what a float64 C++ implementation of the
definition computes (up to the last bits of the FFT and ``log``).
``torchaudio`` builds its mel filters in float32 even for a float64 input
(``get_mel_banks`` uses default-dtype tensors): their weights differ from
the float64 ones by up to ~1.4e-5 (one float32 ulp of a mel value is ~1/100000
of the filter spacing), which moves the log energies by up to ~2.5e-4 on
speech. ``kaldi_fbank(wave, banks=...)`` takes other filters (e.g.
torchaudio's) to show that.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
FRAME_LENGTH = 400
FRAME_SHIFT = 160
FFT_SIZE = 512
NUM_BINS = 80
LOW_FREQ = 20.0
HIGH_FREQ = SAMPLE_RATE / 2
PREEMPHASIS = 0.97
FLT_EPSILON = float(np.finfo(np.float32).eps)


def povey_window(length: int = FRAME_LENGTH) -> np.ndarray:
    j = np.arange(length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * j / (length - 1))) ** 0.85


def mel_scale(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq) / 700.0)


def mel_banks() -> np.ndarray:
    """(80, 257) Kaldi mel filter weights, float64."""
    mel_low = float(mel_scale(LOW_FREQ))
    mel_high = float(mel_scale(HIGH_FREQ))
    delta = (mel_high - mel_low) / (NUM_BINS + 1)
    left = mel_low + np.arange(NUM_BINS, dtype=np.float64)[:, None] * delta
    centre = left + delta
    right = left + 2.0 * delta
    freq = (SAMPLE_RATE / FFT_SIZE) * np.arange(FFT_SIZE // 2, dtype=np.float64)
    mel = mel_scale(freq)[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    weights = np.maximum(0.0, np.minimum(up, down))
    return np.pad(weights, ((0, 0), (0, 1)))


def frames_of(wave: np.ndarray) -> np.ndarray:
    """(F, 400) float64 frames, snip_edges."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.shape[0] < FRAME_LENGTH:
        return np.zeros((0, FRAME_LENGTH))
    count = 1 + (wave.shape[0] - FRAME_LENGTH) // FRAME_SHIFT
    index = np.arange(count)[:, None] * FRAME_SHIFT + np.arange(FRAME_LENGTH)[None, :]
    return wave[index]


def kaldi_fbank(wave: np.ndarray, banks: np.ndarray | None = None) -> np.ndarray:
    """(F, 80) float64 log mel energies of ``wave`` (int16-valued samples at 16 kHz).

    ``banks``: (80, 257) or (80, 256) filter weights to use instead of `mel_banks`.
    """
    if banks is None:
        banks = mel_banks()
    elif banks.shape == (NUM_BINS, FFT_SIZE // 2):
        banks = np.pad(np.asarray(banks, dtype=np.float64), ((0, 0), (0, 1)))
    x = frames_of(wave)
    x = x - x.mean(axis=1, keepdims=True)
    previous = np.concatenate([x[:, :1], x[:, :-1]], axis=1)
    x = x - PREEMPHASIS * previous
    x = x * povey_window()
    spectrum = np.fft.rfft(x, n=FFT_SIZE, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    energies = power @ np.asarray(banks, dtype=np.float64).T
    return np.log(np.maximum(energies, FLT_EPSILON))


def float32_banks() -> np.ndarray:
    """(80, 257) mel filters built in float32 as torchaudio's ``get_mel_banks`` builds them.

    ``mel_low``, ``mel_high`` and ``delta`` in float64 (Python floats), then
    every operation in float32 on those values rounded to float32 (torch
    tensors of the default dtype): ``left = mel_low + b * delta``,
    ``centre = mel_low + (b + 1) * delta``, ``right = mel_low + (b + 2) * delta``,
    bin mel ``1127 * log(1 + (31.25 k) / 700)``, slopes and their clamped
    minimum. torch takes that log with SLEEF's SIMD logf (<= 1 ulp); here it is
    correctly rounded (float64 log rounded to float32), as in the C++ core, so
    41 weights differ from torchaudio's by up to 7.1e-6. The Nyquist bin is 0.
    """
    f32 = np.float32
    mel_low = float(mel_scale(LOW_FREQ))
    mel_high = float(mel_scale(HIGH_FREQ))
    delta = (mel_high - mel_low) / (NUM_BINS + 1)
    low, step = f32(mel_low), f32(delta)
    b = np.arange(NUM_BINS, dtype=f32)[:, None]
    left = low + b * step
    centre = low + (b + f32(1)) * step
    right = low + (b + f32(2)) * step
    freq = f32(SAMPLE_RATE / FFT_SIZE) * np.arange(FFT_SIZE // 2, dtype=f32)
    inner = f32(1) + freq / f32(700)
    mel = (f32(1127) * np.log(inner.astype(np.float64)).astype(f32))[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    weights = np.maximum(f32(0), np.minimum(up, down))
    return np.pad(weights, ((0, 0), (0, 1)))


def stages(wave: np.ndarray, banks: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every stage of `kaldi_fbank` for ``wave`` (float64, frame-major), by name."""
    banks = float32_banks() if banks is None else banks
    frames = frames_of(wave)
    dc = frames - frames.mean(axis=1, keepdims=True)
    pre = dc - PREEMPHASIS * np.concatenate([dc[:, :1], dc[:, :-1]], axis=1)
    windowed = np.pad(pre * povey_window(), ((0, 0), (0, FFT_SIZE - FRAME_LENGTH)))
    spectrum = np.fft.rfft(windowed, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    energy = power @ np.asarray(banks, dtype=np.float64).T
    return {
        "frames": frames,
        "dc_removed": dc,
        "preemphasis": pre,
        "windowed": windowed,
        "spectrum": spectrum,
        "power": power,
        "energy": energy,
        "log": np.log(np.maximum(energy, FLT_EPSILON)),
    }
