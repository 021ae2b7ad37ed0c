"""Frame rates, sample rates, channel counts, durations and mel options out of range.

Every entry point refuses them at once with `ParameterError` (or one line
and exit 2 from the command) instead of hanging, running for minutes or
ending in a traceback. Cases that used to hang run in a subprocess with a
timeout, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from tiny_models import make_tiny_encoder

from synctalk_audio import MelOptions, ParameterError, _core, melspectrogram
from synctalk_audio.errors import AudioLoadError
from synctalk_audio.frontends.audio import AudioInfo, check_info, load_audio, load_audio_with_info
from synctalk_audio.frontends.windows import encoder_windows, num_windows, window_starts
from synctalk_audio.limits import (
    DEFAULT_MAX_DURATION,
    check_channels,
    check_fps,
    check_sample_rate,
)
from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStreamer, samples_needed_for_frame

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")  # 2 s, 16 kHz
TIMEOUT = 60  # seconds; each guarded case takes well under one
MEMORY_LIMIT = 4 << 30  # bytes of address space for a guarded child: a runaway fails early


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


BAD_FPS = [1e9, 1e300, 1e308, float("inf"), float("nan"), 0.0, -25.0, 0.5, 80.0, 80.5]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "good.onnx")


def run_python(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; fail (not hang) if it takes over TIMEOUT."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=ROOT,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {TIMEOUT} s:\n{code}")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "synctalk_audio.cli", *args],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=TIMEOUT,
            cwd=ROOT,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"synctalk-audio {' '.join(args)} hung for {TIMEOUT} s")


def one_error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- the check functions: one range each ------------------------------------


@pytest.mark.parametrize("fps", [1, 1.0, 24, 25.0, 29.97, 60, 79.999, np.float32(30)])
def test_check_fps_accepts_the_range(fps):
    assert check_fps(fps) == float(fps)


@pytest.mark.parametrize("fps", [*BAD_FPS, "25", None, True])
def test_check_fps_refuses_and_names_value_and_range(fps):
    with pytest.raises(ParameterError, match=r"fps must be a number from 1 to below 80.*got"):
        check_fps(fps)


@pytest.mark.parametrize("rate", [1000, 8000, 16000, 44100, 768000, np.int64(48000)])
def test_check_sample_rate_accepts_the_range(rate):
    assert check_sample_rate(rate) == int(rate)


@pytest.mark.parametrize("rate", [0, 1, 999, 768001, 10**14, 2**63, -16000, 16000.0, True])
def test_check_sample_rate_refuses(rate):
    with pytest.raises(ParameterError, match=r"from 1000 to 768000 Hz, got"):
        check_sample_rate(rate)


@pytest.mark.parametrize("channels", [0, -1, 1025, 2**40, 2.0])
def test_check_channels_refuses(channels):
    with pytest.raises(ParameterError, match=r"from 1 to 1024, got"):
        check_channels(channels)


def test_sample_rate_range_is_the_cores():
    assert (_core.MIN_SAMPLE_RATE, _core.MAX_SAMPLE_RATE) == (1000, 768000)
    MelOptions(sample_rate=768000, fmax=7600.0)
    with pytest.raises(ParameterError, match="sample_rate"):
        MelOptions(sample_rate=768001)


# -- window functions: absurd fps used to hang -------------------------------


def test_window_functions_refuse_absurd_fps_at_once():
    lines = run_python(
        f"""
        from synctalk_audio.errors import ParameterError
        from synctalk_audio.frontends.windows import window_starts, num_windows, encoder_windows
        from synctalk_audio.streaming import samples_needed_for_frame
        import numpy as np
        mel = np.zeros((80, 81), np.float32)
        for fps in [float(text) for text in {[str(f) for f in BAD_FPS]!r}]:
            for name, call in [
                ("window_starts", lambda: window_starts(81, fps=fps)),
                ("num_windows", lambda: num_windows(81, fps=fps)),
                ("encoder_windows", lambda: encoder_windows(mel, fps=fps)),
                ("samples_needed_for_frame", lambda: samples_needed_for_frame(3, fps=fps)),
            ]:
                try:
                    call()
                    print(name, fps, "accepted")
                except ParameterError as exc:
                    print(name, fps, "refused", "80" in str(exc))
        """
    )
    assert len(lines) == 4 * len(BAD_FPS)
    assert all(line.endswith("refused True") for line in lines), lines


def test_window_functions_still_take_the_range():
    assert window_starts(21, 25.0).tolist() == [0, 3, 5]
    assert num_windows(4801, 79.5) == int((4801 - 16) / 80 * 79.5) + 2
    assert encoder_windows(np.zeros((80, 21), np.float32), 1.0).shape == (2, 1, 80, 16)
    assert samples_needed_for_frame(0, 25.0) == 7200


# -- Pipeline and FeatureStreamer ------------------------------------------------


@pytest.mark.parametrize("fps", BAD_FPS)
def test_pipeline_and_streamer_refuse_fps(tiny_model, fps):
    with pytest.raises(ParameterError, match="fps"):
        Pipeline(tiny_model, fps=fps)
    with pytest.raises(ParameterError, match="fps"):
        FeatureStreamer(tiny_model, fps=fps)


def test_stream_open_refuses_absurd_rates_at_once(tiny_model):
    lines = run_python(
        f"""
        from synctalk_audio.errors import ParameterError
        from synctalk_audio.streaming import FeatureStreamer
        streamer = FeatureStreamer({tiny_model!r})
        for rate, channels in [(2**63, 1), (10**14, 1), (1, 1), (999, 1), (768001, 1),
                               (16000.0, 1), (16000, 0), (16000, 2**31)]:
            try:
                streamer.open(sample_rate=rate, channels=channels)
                print(rate, channels, "accepted")
            except ParameterError as exc:
                print(rate, channels, "refused", str(exc))
        """
    )
    assert len(lines) == 8 and all(" refused " in line for line in lines), lines
    assert "from 1000 to 768000 Hz, got 9223372036854775808" in lines[0]


def test_load_audio_refuses_absurd_target_rate():
    with pytest.raises(ParameterError, match=r"sr must be an integer from 1000 to 768000 Hz"):
        load_audio(SPEECH, sr=10**14)


def wav_with_rate(rate: int, seconds_at_16k: float = 1.0) -> bytes:
    """A 16-bit mono WAV whose header says ``rate`` Hz (the samples are 16 kHz noise)."""
    buf = io.BytesIO()
    n = int(16000 * seconds_at_16k)
    noise = (np.random.default_rng(1).standard_normal(n) * 3000).astype(np.int16)
    sf.write(buf, noise, 16000, format="WAV", subtype="PCM_16")
    data = bytearray(buf.getvalue())
    assert data[24:28] == struct.pack("<I", 16000)
    data[24:28] = struct.pack("<I", rate)  # sample rate
    data[28:32] = struct.pack("<I", rate * 2)  # byte rate
    return bytes(data)


def test_a_1_hz_header_is_refused_before_decoding(tmp_path, tiny_model):
    # 32 KB declaring 1 Hz: 16000 s of audio, minutes of resampling and gigabytes.
    path = tmp_path / "one_hertz.wav"
    path.write_bytes(wav_with_rate(1))
    info = AudioInfo(str(path), 1, 1, 16000, "WAV/PCM_16")  # what the header declares
    with pytest.raises(AudioLoadError, match=r"sample rate in its header.*768000 Hz, got 1"):
        check_info(info, None)
    out = tmp_path / "out"
    line = one_error_line(
        run_cli("process", "--audio", str(path), "--model", tiny_model, "--output", str(out))
    )
    assert "got 1" in line and str(path) in line
    assert not out.exists()


# -- the duration limit ---------------------------------------------------------


def test_pipeline_duration_limit(tiny_model, tmp_path):
    with Pipeline(tiny_model) as pipe:
        assert pipe.max_duration == DEFAULT_MAX_DURATION == 86400.0
    with Pipeline(tiny_model, max_duration=1.5) as pipe:
        with pytest.raises(ParameterError) as caught:
            pipe.process(SPEECH)
        # The block-by-block path (process_to) checks the header the same way.
        with pytest.raises(ParameterError, match="the limit is 1.5 s"):
            pipe.process_to(SPEECH, str(tmp_path / "out"))
        assert not (tmp_path / "out").exists()
    message = str(caught.value)
    assert "declares 2 s of audio (16000 Hz x 32000 frames); the limit is 1.5 s" in message
    assert "--max-duration" in message
    with Pipeline(tiny_model, max_duration=None) as pipe:
        assert pipe.process(SPEECH).aud_ave.shape[0] > 0
    for bad in (0, -1.0, float("nan"), float("inf"), "1"):
        with pytest.raises(ParameterError, match="max_duration"):
            Pipeline(tiny_model, max_duration=bad)  # type: ignore[arg-type]


def test_the_limit_is_checked_before_decoding(tmp_path):
    # 8 kHz header on 1 s of samples: 2 s declared; a limit of 1.5 s refuses it.
    path = tmp_path / "eight_k.wav"
    path.write_bytes(wav_with_rate(8000))
    with pytest.raises(ParameterError, match=r"declares 2 s of audio \(8000 Hz x 16000 frames\)"):
        load_audio_with_info(str(path), max_duration=1.5)
    assert load_audio_with_info(str(path), max_duration=2.0)[0].shape == (32000,)


def test_process_max_duration_option(tmp_path, tiny_model):
    out = tmp_path / "out"
    line = one_error_line(
        run_cli(
            "process",
            "--audio",
            SPEECH,
            "--model",
            tiny_model,
            "--output",
            str(out),
            "--max-duration",
            "1.5",
        )
    )
    assert line.startswith("synctalk-audio process: error: ")
    assert "declares 2 s of audio (16000 Hz x 32000 frames); the limit is 1.5 s" in line
    assert "--max-duration" in line
    assert not out.exists()
    done = run_cli(
        "process",
        "--audio",
        SPEECH,
        "--model",
        tiny_model,
        "--output",
        str(out),
        "-q",
        "--max-duration",
        "0",
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads((out / "metadata.json").read_text())["counts"]["frames"] > 0


def test_streamer_duration_limit(tiny_model):
    streamer = FeatureStreamer(tiny_model, max_duration=1.5)
    stream = streamer.open(sample_rate=16000)
    audio = np.zeros(16000, np.float32)
    stream.feed(audio)
    with pytest.raises(ParameterError, match=r"the stream reached 2 s of audio.*limit is 1.5 s"):
        stream.feed(audio)
    assert FeatureStreamer(tiny_model).max_duration is None


# -- the command -------------------------------------------------------------------


@pytest.mark.parametrize("fps", ["1e9", "1e300", "1e308", "nan", "0", "80"])
def test_process_refuses_absurd_fps_with_one_line(tmp_path, tiny_model, fps):
    out = tmp_path / "out"
    line = one_error_line(
        run_cli(
            "process", "--audio", SPEECH, "--model", tiny_model, "--output", str(out), "--fps", fps
        )
    )
    assert "--fps must be a number from 1 to below 80" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "options, expect",
    [
        (["--rate", "100000000000000"], "--rate must be an integer from 1000 to 768000 Hz"),
        (["--rate", "1"], "--rate must be an integer from 1000 to 768000 Hz"),
        (["--channels", "0"], "--channels must be an integer from 1 to 1024"),
        (["--channels", "5000"], "--channels must be an integer from 1 to 1024"),
        (["--fps", "1e9"], "--fps must be a number from 1 to below 80"),
    ],
)
def test_stream_refuses_absurd_raw_formats_with_one_line(tiny_model, options, expect):
    done = run_cli("stream", "--model", tiny_model, "--raw", "s16le", *options, stdin=bytes(64000))
    assert expect in one_error_line(done)
    assert done.stdout == b""


def test_stream_refuses_a_1_hz_wav_header(tiny_model):
    done = run_cli("stream", "--model", tiny_model, stdin=wav_with_rate(1))
    assert "sample rate in the WAV header must be an integer from 1000" in one_error_line(done)


def test_stream_max_duration(tiny_model):
    with open(SPEECH, "rb") as f:
        wav = f.read()
    # The header declares 2 s: refused before any data is read.
    line = one_error_line(
        run_cli("stream", "--model", tiny_model, "--max-duration", "1.5", stdin=wav)
    )
    assert "the WAV header declares 2 s of audio (16000 Hz x 32000 frames)" in line
    # Raw input of unknown length: stops once the limit is passed.
    line = one_error_line(
        run_cli(
            "stream",
            "--model",
            tiny_model,
            "--raw",
            "s16le",
            "--max-duration",
            "1.5",
            stdin=bytes(64000),
        )
    )
    assert "the stream reached" in line and "the limit is 1.5 s" in line


# -- MelOptions bounds (C++ Validate, through the bindings) --------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("sample_rate", 1),
        ("sample_rate", 999),
        ("sample_rate", 768001),
        ("sample_rate", 2**63),
        ("n_fft", 2**40),
        ("hop_length", 65537),
        ("hop_length", 2**31),
        ("n_mels", 4097),
        ("n_mels", 10**6),
        ("n_mels", 2**31 - 1),
        ("preemphasis", 1.5),
        ("preemphasis", -1e300),
        ("ref_level_db", 1e308),
        ("ref_level_db", -1001.0),
        ("min_level_db", -1e308),
        ("min_level_db", -1000.5),
        ("max_abs_value", 1e308),
        ("max_abs_value", 1e6 * (1 + 1e-15)),
        ("max_abs_value", float("nan")),
    ],
)
def test_mel_options_are_bounded(field, value):
    with pytest.raises(ParameterError, match=rf"invalid mel option {field}="):
        MelOptions(**{field: value})


def test_core_options_throw_value_error_naming_the_field():
    for field, value in [("n_mels", 4097), ("max_abs_value", 1e308), ("sample_rate", 1)]:
        options = _core.MelOptions()
        setattr(options, field, value)
        with pytest.raises(ValueError, match=field):
            options.validate()
        with pytest.raises(ValueError, match=field):
            _core.MelProcessor(options)


@pytest.mark.parametrize(
    "options",
    [
        dict(max_abs_value=1e6, ref_level_db=-1000.0, min_level_db=-1000.0),
        dict(max_abs_value=1e6, ref_level_db=1000.0, min_level_db=-1e-300),
        dict(preemphasis=1.0),
        dict(preemphasis=-1.0),
        dict(sample_rate=1000, fmax=500.0, fmin=0.0),
        dict(sample_rate=768000, fmax=384000.0, n_mels=4096),
        dict(n_fft=65536, win_length=65536, hop_length=65536, n_mels=4096, fmax=8000.0),
    ],
)
def test_options_at_the_bounds_give_finite_output(options):
    audio = (np.random.default_rng(3).standard_normal(20000) * 0.5).astype(np.float32)
    opts = MelOptions(**options)
    mel = melspectrogram(audio, options=opts)
    assert mel.shape[0] == opts.n_mels
    assert np.isfinite(mel).all()
    assert np.abs(mel).max() <= opts.max_abs_value


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2", None])
def test_counts_are_positive_integers_everywhere(bad):
    from synctalk_audio import melspectrogram_many
    from synctalk_audio.jobs.local import LocalEngine
    from synctalk_audio.limits import check_count

    message = f"must be a positive integer, got {bad!r}"
    with pytest.raises(ParameterError, match=re.escape(f"threads {message}")):
        check_count(bad, "threads")
    if bad is not None:  # None means "the default" for these
        with pytest.raises(ParameterError, match=re.escape(f"threads {message}")):
            melspectrogram_many([np.zeros(400, np.float32)] * 2, threads=bad)
        with pytest.raises(ParameterError, match=re.escape(f"workers {message}")):
            LocalEngine(workers=bad)
