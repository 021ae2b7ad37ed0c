"""Encoder windows against SyncTalk_2D's ``AudDataset`` (golden data).

Reference, for M mel frames and frame rate fps:
count N = ``int((M - 16) / 80. * float(fps)) + 2``; window i starts at
``int(80. * (i / float(fps)))``, moved back to ``M - 16`` where it would run
past the end; the encoder input is that 16-frame slice, (1, 80, 16), float32.

Tolerances: counts and starts exact (integers from IEEE divisions and
products, the same on every CPU); `encoder_windows` of the golden float64
mel exact (a slice rounded to float32, as ``torch.FloatTensor`` does: no
library arithmetic); `encoder_windows` of the package's own float32 mel within
1e-6 (the mel tolerance) of the reference windows — end to end, of the
reference mel of the same decoded samples, since the decoded samples may
differ from the golden ones in their last bits on another CPU
(test_golden_audio.py) and quiet mel bands amplify that. Audio shorter than
3000 samples (0.1875 s, 16 mel frames) must raise `ParameterError` naming that
minimum.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference_mel as R

from synctalk_audio import (
    ParameterError,
    encoder_windows,
    load_audio,
    melspectrogram,
    min_samples,
    num_windows,
    window_starts,
)

pytestmark = pytest.mark.numeric

FPS = pytest.mark.parametrize(
    ("fps", "fps_key"), [(25.0, "25"), (30.0, "30"), (29.97, "29p97")], ids=["25", "30", "29.97"]
)


def reference_windows(mel: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """AudDataset: crop mel.T[start:start + 16], transpose, float32, add the channel axis."""
    spec = mel.T
    out = [np.asarray(spec[s : s + 16, :].T, dtype=np.float32)[None] for s in starts]
    return np.stack(out)


@FPS
def test_num_windows(golden_case, fps, fps_key):
    frames = golden_case.facts["mel_frames"]
    want = golden_case.facts["windows"][fps_key]["count"]
    assert want == golden_case.starts(fps_key).shape[0]
    got = num_windows(frames, fps)
    assert got == want, (
        f"{golden_case.name}: num_windows({frames}, {fps}) = {got}, AudDataset {want}"
    )


@FPS
def test_window_starts(golden_case, fps, fps_key):
    frames = golden_case.facts["mel_frames"]
    want = golden_case.starts(fps_key)
    got = window_starts(frames, fps)
    assert got.shape == want.shape, (
        f"{golden_case.name} fps {fps}: {got.shape[0]} starts, want {want.shape[0]}"
    )
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, (
        f"{golden_case.name} fps {fps}: starts differ at windows {bad[:10].tolist()}:"
        f" got {got[bad[:10]].tolist()}, AudDataset {want[bad[:10]].tolist()}"
    )


@FPS
def test_encoder_windows_of_reference_mel(golden_case, fps, fps_key):
    mel = golden_case.mel("constant")
    want = reference_windows(mel, golden_case.starts(fps_key))
    got = encoder_windows(mel, fps)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert got.shape == want.shape == (want.shape[0], 1, 80, 16), (golden_case.name, got.shape)
    assert np.array_equal(got, want), (
        f"{golden_case.name} fps {fps}: windows differ from AudDataset"
    )


@FPS
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_encoder_windows_end_to_end(golden_case, fps, fps_key, pad_mode):
    """load_audio -> melspectrogram -> encoder_windows, vs AudDataset's windows of the
    reference mel of the same samples (tests/reference_mel.py), within 1e-6."""
    wav = load_audio(golden_case.path)
    mel = melspectrogram(wav, pad_mode=pad_mode)
    want = reference_windows(
        R.melspectrogram(wav, R.Params(pad_mode=pad_mode)), golden_case.starts(fps_key)
    )
    got = encoder_windows(mel, fps)
    assert got.shape == want.shape, (golden_case.name, got.shape, want.shape)
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
    assert err <= 1e-6, f"{golden_case.name} fps {fps} {pad_mode}: max abs error {err:.3g} > 1e-6"


def test_int_and_float_fps_agree():
    for frames in (16, 21, 97, 161, 4801):
        assert num_windows(frames, 25) == num_windows(frames, 25.0)
        assert np.array_equal(window_starts(frames, 30), window_starts(frames, 30.0))


def test_worked_examples():
    # 0.25 s: M = 1 + 4000 // 200 = 21, N = int(5 / 80 * 25) + 2 = 3
    assert num_windows(21) == 3
    assert window_starts(21).tolist() == [0, 3, 5]
    # 60 s: M = 1 + 960000 // 200 = 4801, N = int(4785 / 80 * 25) + 2 = int(1495.3125) + 2
    # = 1497, as AudDataset.data_len computes it (not 1500, the round figure 60 s x 25 fps
    # suggests); aud_ave then has N + 2 = 1499 rows, as the Pipeline docstring says
    assert num_windows(4801) == int((4801 - 16) / 80.0 * 25.0) + 2 == 1497


MIN_MESSAGE = r"0\.1875 s"


@pytest.mark.parametrize("n_samples", [1, 200, 2800, 2999])
def test_too_short_audio_raises(n_samples):
    wav = (0.1 * np.sin(np.arange(n_samples) / 7.0)).astype(np.float32)
    mel = melspectrogram(wav)
    assert mel.shape[1] == 1 + n_samples // 200 < 16
    for call in (
        lambda: num_windows(mel.shape[1], 25.0),
        lambda: window_starts(mel.shape[1], 25.0),
        lambda: encoder_windows(mel, 25.0),
    ):
        with pytest.raises(ParameterError, match=MIN_MESSAGE) as info:
            call()
        message = str(info.value)
        assert "3000 samples" in message and "too short" in message, message


def test_too_short_file_raises(tmp_path):
    import soundfile as sf

    path = tmp_path / "short.wav"
    sf.write(path, np.full(2999, 0.1, dtype=np.float32), 16000, subtype="PCM_16")
    mel = melspectrogram(load_audio(path))
    with pytest.raises(ParameterError, match=MIN_MESSAGE):
        encoder_windows(mel, 25.0)


def test_minimum_length_works():
    assert min_samples() == 3000
    mel = melspectrogram(np.zeros(3000, dtype=np.float32))
    assert mel.shape == (80, 16)
    assert num_windows(16, 25.0) == 2
    assert window_starts(16, 25.0).tolist() == [0, 0]
    windows = encoder_windows(mel, 25.0)
    assert windows.shape == (2, 1, 80, 16)
    assert np.array_equal(windows[0, 0], mel) and np.array_equal(windows[1, 0], mel)
