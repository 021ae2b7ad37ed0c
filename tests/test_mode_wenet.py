"""Mode ``wenet``: Ultralight-Digital-Human's WeNet features, batch and streaming.

Against the golden arrays of tests/golden/modes (upstream's wenet_infer.py
logic with torchaudio's float32 fbank, tests/reference/ultralight.py) with the
tiny seeded stand-in encoder (models/make_test_wenet.py, the ``wenet_model``
fixture of tests/model_fixture.py, checked against the manifest by its output).

Tolerance WENET_TOL, from measured facts: upstream computes its fbank in
float32 (torchaudio), ours in float64, closest to torchaudio's float64 fbank
(docs/DECISIONS.md, "Kaldi fbank"). torchaudio's own float64 fbank gives wenet
features 2.3e-4 from upstream's with this encoder; ours measure 9.9e-5 at most
over the stored clips (speech_16k_long_21s). 3e-4 allows any exact float64
fbank, and is 1/30 of the features' typical size (~1e-2 to 1).
Stream == batch is exact (bytes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import reference_data
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import ultralight

from synctalk_audio import cli
from synctalk_audio.encoders import WenetEncoder
from synctalk_audio.errors import ModelError, ParameterError
from synctalk_audio.modes import get_mode
from synctalk_audio.modes.wenet import (
    PAD_AFTER,
    PAD_BEFORE,
    chunk_inputs,
    num_chunks,
    samples_needed_for_row,
    to_int16_scale,
)
from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStreamer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
GOLDEN = os.path.join(TESTS, "golden", "modes")
with open(os.path.join(GOLDEN, "manifest.json"), encoding="utf-8") as _f:
    MANIFEST = json.load(_f)
CASES = sorted(MANIFEST["cases"])
SPEECH = os.path.join(TESTS, MANIFEST["cases"]["speech_16k_s16_mono"]["file"])

#: Our features vs upstream's (torchaudio float32 fbank): see the module docstring.
WENET_TOL = 3e-4


@pytest.fixture(scope="module")
def streamer(wenet_model: str) -> FeatureStreamer:
    return FeatureStreamer(wenet_model, mode="wenet", threads=1)


def _golden(name: str) -> np.ndarray:
    return reference_data.load_npz(os.path.join(GOLDEN, name + ".npz"))["wenet"]


# -- the upstream arithmetic ---------------------------------------------------------


def test_int16_scale_truncates_and_clips():
    pcm = np.array([-32768, -32767, -2, -1, 0, 1, 2, 16384, 32767], np.int16)
    x = pcm.astype(np.float64) / 32768  # what soundfile returns for PCM_16
    want = (x.astype(np.float32) * 32767).astype(np.int16)  # upstream, in range
    np.testing.assert_array_equal(to_int16_scale(x), want.astype(np.float32))
    assert to_int16_scale(np.array([100 / 32768]))[0] == 99  # v - sign(v)
    np.testing.assert_array_equal(
        to_int16_scale(np.array([1.5, -1.5, 1e9])), [32767, -32768, 32767]
    )


@pytest.mark.parametrize("frames", [1, 62, 63, 67, 68, 72, 73, 100, 2200])
def test_chunk_count_and_cutting_follow_upstreams_loop(frames):
    feats = np.arange(frames * 80, dtype=np.float32).reshape(frames, 80) + 1
    want = list(ultralight.wenet_chunks(feats))
    assert num_chunks(frames) == len(want) == ultralight.wenet_count(frames)
    got = chunk_inputs(feats, 0, num_chunks(frames))
    np.testing.assert_array_equal(got, np.concatenate(want))


# -- batch against the goldens -------------------------------------------------------


@pytest.mark.numeric
@pytest.mark.parametrize("name", CASES)
def test_features_match_upstream(wenet_model, name):
    facts = MANIFEST["cases"][name]
    with Pipeline(wenet_model, mode="wenet", threads=1) as pipe:
        feats = pipe.process(os.path.join(TESTS, facts["file"]))
    assert feats.array.shape == tuple(facts["wenet_shape"])
    ours = feats.array[..., :: facts["wenet_column_stride"]]
    error = float(np.abs(ours - _golden(name)).max())
    assert error < WENET_TOL, f"{name}: {error:.3g}"
    counts = feats.metadata["counts"] if "counts" in feats.metadata else feats.metadata
    assert json.dumps(counts).count(str(facts["wenet_F"])) >= 1


def test_chunks_encoded_at_once_give_the_same_bytes(wenet_model):
    # The chunks are independent, so `threads` of them run at once, each on one
    # ONNX Runtime thread: the rows are the same bytes for any thread count,
    # the default (the usable CPUs) included.
    arrays = []
    for threads in (1, 2, 3, None):
        with Pipeline(wenet_model, mode="wenet", threads=threads) as pipe:
            arrays.append(pipe.process(SPEECH).array)
    assert arrays[0].shape[0] > 3
    for other in arrays[1:]:
        assert other.tobytes() == arrays[0].tobytes()


def test_encoder_error_in_a_worker_thread_is_the_same_error(wenet_model):
    encoder = WenetEncoder(wenet_model, threads=2)
    bad = np.zeros((4, 1, 67, 80), np.float32)
    bad[2, 0, 5, 7] = np.nan  # NaN in, NaN out: refused, naming the chunk
    with pytest.raises(ModelError, match=r"NaN/inf for windows 2\.\.2"):
        encoder.encode(bad)


@pytest.mark.parametrize("half_window", [8, 4])
def test_frames_are_the_window_rule(wenet_model, half_window):
    with Pipeline(wenet_model, mode="wenet", half_window=half_window, threads=1) as pipe:
        feats = pipe.process(SPEECH)
    assert feats.frame_shape == {8: (256, 16, 32), 4: (128, 16, 32)}[half_window]
    assert len(feats) == feats.array.shape[0]
    for i in (0, 3, len(feats) - 1):
        want = ultralight.frame_window(feats.array, i, half_window, "wenet")
        np.testing.assert_array_equal(feats.frame(i), want)


def test_process_command_writes_the_files(wenet_model, tmp_path):
    out = tmp_path / "out"
    argv = ["process", "--mode", "wenet", "--model", wenet_model, "--audio", SPEECH]
    assert cli.main([*argv, "--output", str(out), "-q"]) == 0
    aud = np.load(out / "aud_wenet.npy")
    assert aud.shape == (41, 16, 512) and aud.dtype == np.float32
    names = sorted(os.listdir(out / "frames"))
    assert len(names) == 41 and names[0] == "frame_00000.bin"
    blob = (out / "frames" / "frame_00005.bin").read_bytes()
    assert int.from_bytes(blob[:4], "little") == 131072 and len(blob) == 4 + 4 * 131072
    want = ultralight.frame_window(aud, 5, 8, "wenet")
    np.testing.assert_array_equal(np.frombuffer(blob[4:], "<f4").reshape(256, 16, 32), want)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["settings"]["mode"] == "wenet" and meta["settings"]["fps"] == 20.0


def test_only_20_fps(wenet_model, tmp_path, capsys):
    with pytest.raises(ParameterError, match="fps 25 is not possible with mode 'wenet'"):
        Pipeline(wenet_model, mode="wenet", fps=25)
    out = str(tmp_path / "out")
    argv = ["process", "--mode", "wenet", "--model", wenet_model, "--audio", SPEECH]
    assert cli.main([*argv, "--output", out, "--fps", "25"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fps 25 is not possible with mode 'wenet'" in err[0], err
    assert not os.path.exists(out)


def test_a_model_of_another_kind_is_refused(test_encoder, tmp_path, capsys):
    message = "is not a WeNet encoder of Ultralight-Digital-Human's kind"
    with pytest.raises(ModelError, match=message):
        WenetEncoder(test_encoder.onnx)
    with pytest.raises(ModelError, match="expects inputs 'chunk' float32 \\(1, 1, 67, 80\\)"):
        Pipeline(test_encoder.onnx, mode="wenet")
    out = str(tmp_path / "out")
    argv = ["process", "--mode", "wenet", "--model", test_encoder.onnx, "--audio", SPEECH]
    assert cli.main([*argv, "--output", out]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not os.path.exists(out)
    with pytest.raises(FileNotFoundError, match="make_test_wenet.py"):
        WenetEncoder(str(tmp_path / "missing.onnx"))


# -- streaming ------------------------------------------------------------------------


def _speech16k() -> np.ndarray:
    x, _ = sf.read(SPEECH, dtype="float32")
    return np.asarray(x)


def _batch(model: str, audio: np.ndarray, half_window: int = 8) -> tuple[bytes, bytes]:
    with Pipeline(model, mode="wenet", half_window=half_window, threads=1) as pipe:
        feats = pipe.process(audio)
    return feats.all_frames().tobytes(), feats.array.tobytes()


def _stream(
    streamer: FeatureStreamer, audio: np.ndarray, sizes: list[int], **open_kw: object
) -> tuple[bytes, bytes, dict[int, int]]:
    stream = streamer.open(**open_kw)  # type: ignore[arg-type]
    frames, position, i, emitted_at = [], 0, 0, {}
    while position < audio.shape[0]:
        size = sizes[i % len(sizes)]
        new = stream.feed(audio[position : position + size])
        position += size
        i += 1
        for frame in new:
            emitted_at[frame.index] = min(position, audio.shape[0])
        frames += new
    frames += stream.close()
    assert [f.index for f in frames] == list(range(len(frames)))
    rows = np.stack([f.row for f in frames])
    return np.stack([f.features for f in frames]).tobytes(), rows.tobytes(), emitted_at


@pytest.mark.parametrize("sizes", [[1], [7], [160], [800], [1, 799, 3, 5000], [4096], [10**7]])
def test_stream_equals_batch(wenet_model, streamer, sizes):
    audio = _speech16k()
    if sizes == [1]:
        audio = audio[:12000]  # 12000 feeds of one sample
    want_frames, want_rows = _batch(wenet_model, audio)
    got_frames, got_rows, _ = _stream(streamer, audio, sizes)
    assert got_rows == want_rows, "streamed aud_wenet rows differ from batch (exact bytes)"
    assert got_frames == want_frames, "streamed frames differ from batch (exact bytes)"


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=7000), min_size=1, max_size=8),
    length=st.integers(min_value=1, max_value=20000),
)
def test_stream_equals_batch_property(wenet_model, streamer, sizes, length):
    audio = _speech16k()[:length]
    want_frames, want_rows = _batch(wenet_model, audio)
    got_frames, got_rows, _ = _stream(streamer, audio, sizes)
    assert (got_rows, got_frames) == (want_rows, want_frames)


@pytest.mark.parametrize("half_window", [8, 4])
def test_frames_come_out_when_their_samples_arrive(wenet_model, half_window):
    """Frame i comes out of the feed that delivers sample samples_needed(i) - 1, not later."""
    mode = get_mode("wenet")
    streamer = FeatureStreamer(wenet_model, mode="wenet", half_window=half_window, threads=1)
    audio = _speech16k()
    _, _, emitted_at = _stream(streamer, audio, [40])
    settings_ = mode.settings(half_window=half_window)
    early = [i for i in emitted_at if emitted_at[i] < audio.shape[0]]
    assert len(early) > 10
    for index in early:
        need = mode.samples_needed(index, settings_)
        assert need <= emitted_at[index] < need + 40, (index, need, emitted_at[index])
    assert samples_needed_for_row(0) == 10960 - PAD_BEFORE
    assert streamer.samples_needed(0) == samples_needed_for_row(half_window - 1)


@pytest.mark.parametrize("name", ["speech_44k1_stereo_s24", "speech_8k_u8"])
def test_resampled_stereo_stream_equals_batch(wenet_model, streamer, name):
    path = os.path.join(TESTS, MANIFEST["cases"][name]["file"])
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    with Pipeline(wenet_model, mode="wenet", threads=1) as pipe:
        feats = pipe.process(path)
    stream = streamer.open(sample_rate=rate, channels=data.shape[1])
    frames = []
    for at in range(0, data.shape[0], 777):
        frames += stream.feed(data[at : at + 777])
    frames += stream.close()
    assert np.stack([f.row for f in frames]).tobytes() == feats.array.tobytes()


def test_stream_command(wenet_model, tmp_path):
    with open(SPEECH, "rb") as f:
        data = f.read()
    out_dir = tmp_path / "live"
    done = subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", "stream", "--mode", "wenet",
         "--model", wenet_model, "--output", str(out_dir), "-q"],
        input=data, capture_output=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    with Pipeline(wenet_model, mode="wenet") as pipe:
        feats = pipe.process(SPEECH)
    blob, pos, got = done.stdout, 0, []
    while pos < len(blob):
        count = int.from_bytes(blob[pos : pos + 4], "little")
        assert count == 131072
        got.append(blob[pos + 4 : pos + 4 + 4 * count])
        pos += 4 + 4 * count
    assert b"".join(got) == feats.all_frames().astype("<f4").tobytes()
    assert np.load(out_dir / "aud_wenet.npy").tobytes() == feats.array.tobytes()


def test_padding_constants():
    assert (PAD_BEFORE, PAD_AFTER) == (ultralight.WENET_PAD_BEFORE, ultralight.WENET_PAD_AFTER)


def test_process_summary_names_the_modes_counts(wenet_model, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["process", "--mode", "wenet", "--model", wenet_model, "--audio", SPEECH]
    assert cli.main([*argv, "--output", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "2.00 s -> 41 frames (265 fbank frames, 41 chunks) in" in line, line
