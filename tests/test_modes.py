"""The feature-mode seam: the registry, per-mode fps and half-window rules, a toy mode.

The toy mode at the end is defined here in a few lines and registered for
the test only; `Pipeline`, `FeatureStreamer`, the block-by-block writer, the
writers, metadata.json and the command run it unchanged. That is the promise
of the seam: a new mode is one module and one registry line, no engine change.

The job-engine seam makes the same promise, and a toy engine after it shows
it: a class following `synctalk_audio.jobs.engine.Engine`, registered with one
line, runs a job of the toy mode through the command.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pytest

from synctalk_audio import cli, modes
from synctalk_audio.encoders import file_sha256
from synctalk_audio.errors import ParameterError
from synctalk_audio.frontends.audio import TARGET_RATE, load_audio_with_info
from synctalk_audio.jobs.engine import ENGINES, CommandOption
from synctalk_audio.jobs.plan import RECORD_NAME
from synctalk_audio.modes.ave import AveMode
from synctalk_audio.modes.base import BatchResult, FeatureMode, ModeSettings
from synctalk_audio.outputs.features import AudioFeatures
from synctalk_audio.outputs.files import read_frame_file
from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStreamer

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")


# -- the registry ----------------------------------------------------------------


def test_registry_holds_every_mode():
    assert list(modes.REGISTRY) == ["ave", "hubert", "wenet"]
    assert isinstance(modes.get_mode("ave"), AveMode)
    assert modes.get_mode(modes.REGISTRY["ave"]) is modes.REGISTRY["ave"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("foo", "unknown mode 'foo': expected one of ave, hubert, wenet"),
        ("", "unknown mode '': expected one of ave, hubert, wenet"),
    ],
)
def test_unregistered_modes_are_refused(test_encoder, name, message):
    with pytest.raises(ParameterError, match=message):
        modes.get_mode(name)
    with pytest.raises(ParameterError, match=message):
        Pipeline(test_encoder.onnx, mode=name)
    with pytest.raises(ParameterError, match=message):
        FeatureStreamer(test_encoder.onnx, mode=name)


def test_mode_list_in_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["process", "--help"])
    assert "feature mode, one of: ave, hubert, wenet" in " ".join(capsys.readouterr().out.split())


# -- fps and half-window, per mode -------------------------------------------------


def test_ave_defaults_to_its_own_rate_and_takes_the_range(test_encoder):
    ave = modes.get_mode("ave")
    assert ave.native_fps == 25.0
    with Pipeline(test_encoder.onnx) as pipe:
        assert pipe.fps == 25.0 and pipe.half_window == 8
    assert FeatureStreamer(test_encoder.onnx).fps == 25.0
    assert ave.settings(fps=30).fps == 30.0
    with pytest.raises(ParameterError, match="from 1 to below 80"):
        ave.settings(fps=80)


@pytest.mark.parametrize("half_window", [4, 0, 16, -8, True, "8", 8.0])
def test_ave_has_only_half_window_8(test_encoder, half_window):
    message = f"half_window {half_window!r} is not possible with mode 'ave': expected 8"
    with pytest.raises(ParameterError, match=message):
        Pipeline(test_encoder.onnx, half_window=half_window)
    with pytest.raises(ParameterError, match=message):
        FeatureStreamer(test_encoder.onnx, half_window=half_window)
    with pytest.raises(ParameterError, match=message):
        AudioFeatures(np.zeros((3, 512), np.float32), half_window=half_window)


def test_command_refuses_half_window_4_for_ave(test_encoder, tmp_path, capsys):
    out = str(tmp_path / "out")
    argv = ["process", "--audio", SPEECH, "--model", test_encoder.onnx, "--output", out]
    assert cli.main([*argv, "--half-window", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "synctalk-audio process: error: --half-window 4 is not possible with mode 'ave':"
        " expected 8 (8 = SyncTalk_2D, 4 = Ultralight-Digital-Human)"
    ]
    assert not os.path.exists(out)


# -- a toy fourth mode: no engine change ------------------------------------------

BLOCK = 800  # 16 kHz samples per row: 20 rows a second


class ToyEncoder:
    """(B, 800) blocks -> (B, 2, 3): mean, min and max of each half of a block.

    Its "model" file is never read but for its SHA-256, when it exists: what
    a job's resume compares (metadata.json's ``model.sha256``).
    """

    def __init__(self, model: Any = None) -> None:
        self.model = model

    def encode(self, blocks: np.ndarray) -> np.ndarray:
        halves = blocks.reshape(blocks.shape[0], 2, BLOCK // 2)
        stats = [halves.mean(axis=2), halves.min(axis=2), halves.max(axis=2)]
        return np.stack(stats, axis=2).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"backend": "toy", "batch_size": None}
        if isinstance(self.model, str) and os.path.isfile(self.model):
            facts["sha256"] = file_sha256(self.model)
        return facts


def blocks_of(samples: np.ndarray, *, final: bool) -> np.ndarray:
    """Whole 800-sample blocks; at the end the rest zero-padded to one more."""
    count = -(-samples.shape[0] // BLOCK) if final else samples.shape[0] // BLOCK
    padded = np.zeros(count * BLOCK, np.float32)
    used = min(samples.shape[0], padded.shape[0])
    padded[:used] = samples[:used]
    return padded.reshape(count, BLOCK)


class ToyRows:
    def __init__(self) -> None:
        self.pending = np.zeros(0, np.float32)
        self.seen = 0

    def to_mono(self, data: np.ndarray) -> np.ndarray:
        return data if data.ndim == 1 else data[:, 0].copy()

    def accept(self, mono: np.ndarray) -> np.ndarray:
        self.seen += mono.shape[0]
        self.pending = np.concatenate([self.pending, mono])
        blocks = blocks_of(self.pending, final=False)
        self.pending = self.pending[blocks.size :]
        return blocks

    def finish(self) -> np.ndarray:
        return blocks_of(self.pending, final=True)

    def rows(self, encoded: np.ndarray, *, final: bool) -> np.ndarray:
        return encoded

    def counts(self) -> dict[str, int]:
        return {"samples_16k": self.seen}


class ToyMode(FeatureMode):
    name = "toy"
    feature_file = "aud_toy.npy"
    row_shape = (2, 3)
    native_fps = 20.0
    frame_shapes = {8: (16, 6), 4: (4, 12)}
    default_model = "toy.model"
    stream_refusal = None

    def open_encoder(self, model: Any, **_: Any) -> ToyEncoder:
        return ToyEncoder(model)

    load_file = AveMode.load_file  # librosa-exact files (arrays: the base class)

    def compute(
        self, samples: np.ndarray, encoder: Any, settings: ModeSettings, **_: Any
    ) -> BatchResult:
        rows = encoder.encode(blocks_of(samples, final=True))
        return BatchResult(rows, {"samples_16k": samples.shape[0]}, {"toy_s": 0.0})

    def open_rows(self, settings: ModeSettings, *, sample_rate: int, channels: int) -> ToyRows:
        assert sample_rate == TARGET_RATE
        return ToyRows()


@pytest.fixture
def toy(monkeypatch):
    mode = ToyMode()
    monkeypatch.setitem(modes.REGISTRY, mode.name, mode)
    return mode


def test_toy_mode_runs_every_engine(toy, tmp_path):
    samples, _ = load_audio_with_info(SPEECH)
    with Pipeline(mode="toy") as pipe:
        assert pipe.fps == 20.0
        feats = pipe.process(SPEECH)
        assert feats.array.shape == (-(-samples.shape[0] // BLOCK), 2, 3)
        assert feats.frame(0).shape == (16, 6)
        # A file goes block by block through FeatureStream; an array through compute.
        meta = pipe.process_to(SPEECH, str(tmp_path / "file"))
        pipe.process_to(samples, str(tmp_path / "array"))
    for name in ("file", "array"):
        out = tmp_path / name
        assert sorted(os.listdir(out)) == ["aud_toy.npy", "frames", "metadata.json"]
        assert np.load(out / "aud_toy.npy").tobytes() == feats.array.tobytes()
        frames = sorted(os.listdir(out / "frames"))
        assert len(frames) == len(feats)
        last = read_frame_file(str(out / "frames" / frames[-1]))
        assert last.tobytes() == feats.frame(len(feats) - 1).tobytes()  # count 96 = 16 x 6
    assert meta["settings"]["mode"] == "toy" and meta["settings"]["frame_shape"] == [16, 6]
    assert meta["counts"] == {"samples_16k": samples.shape[0], "frames": len(feats)}
    assert meta["model"] == {"backend": "toy", "batch_size": None}

    stream = FeatureStreamer(mode="toy", half_window=4).open()
    got = [
        f
        for start in range(0, samples.shape[0], 999)
        for f in stream.feed(samples[start : start + 999])
    ]
    got += stream.close()
    short = AudioFeatures(feats.array, mode="toy", half_window=4)
    assert [f.index for f in got] == list(range(len(short)))
    for frame in got:
        assert frame.features.tobytes() == short.frame(frame.index).tobytes()
        assert frame.features.shape == (4, 12)


def test_toy_mode_in_the_command(toy, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        cli.main(["process", "--mode", "toy", "--audio", SPEECH, "--output", str(out), "-q"]) == 0
    )
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["settings"]["fps"] == 20.0 and meta["settings"]["half_window"] == 8
    assert os.path.isfile(out / "aud_toy.npy")
    argv = ["process", "--mode", "toy", "--audio", SPEECH, "--output", str(tmp_path / "x")]
    assert cli.main([*argv, "--fps", "25"]) == 2
    assert capsys.readouterr().err.strip() == (
        "synctalk-audio process: error: --fps 25 is not possible with mode 'toy': its features"
        " come at 20 fps only (leave it out or pass 20)"
    )
    assert cli.main(["validate", str(out), str(out), "--json"]) == 0


def test_a_mode_that_cannot_stream_says_why(toy, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(toy, "stream_refusal", "its normalisation uses the whole clip")
    with pytest.raises(ParameterError, match="mode 'toy' cannot stream: its normalisation"):
        FeatureStreamer(mode="toy")
    assert (
        cli.main(["stream", "--mode", "toy", "--no-stdout", "--output", str(tmp_path / "o")]) == 2
    )
    assert capsys.readouterr().err.strip() == (
        "synctalk-audio stream: error: mode 'toy' cannot stream: its normalisation uses the"
        " whole clip"
    )
    # process still works: the whole file goes through the mode's batch recipe
    with Pipeline(mode="toy") as pipe:
        pipe.process_to(SPEECH, str(tmp_path / "batch"))
    assert os.path.isfile(tmp_path / "batch" / "aud_toy.npy")


def test_export_offers_the_modes_that_name_an_exporter():
    from synctalk_audio.errors import ParameterError
    from synctalk_audio.export import export_hubert, export_onnx, exportable_modes, exporter_of

    assert exportable_modes() == ["ave", "hubert"]
    assert exporter_of("ave") is export_onnx and exporter_of("hubert") is export_hubert
    with pytest.raises(ParameterError, match="mode 'wenet' has no exporter"):
        exporter_of("wenet")


# -- a toy job engine: no job change -----------------------------------------------


class SerialEngine:
    """Every item in this process, one after the other, one worker (an `Engine`)."""

    name = "serial"
    options: tuple[str, ...] = ("note",)
    command_options = (CommandOption("note", "TEXT", "a note the engine keeps"),)
    cpus_per_worker = None
    runs: list[SerialEngine] = []

    def __init__(self, workers: int | None = None, note: str = "") -> None:
        self.workers = workers
        self.note = note
        self.pool_size: int | None = None
        self.items: list[Any] = []
        SerialEngine.runs.append(self)

    def check(self) -> None:
        pass

    def run(self, items, make_worker, on_result) -> None:
        self.pool_size = 1
        work = make_worker()
        for index, item in enumerate(items):
            self.items.append(item)
            on_result(index, work(item))


@pytest.fixture
def serial(monkeypatch):
    monkeypatch.setitem(ENGINES, "serial", SerialEngine)  # the one registry line
    monkeypatch.setattr(SerialEngine, "runs", [])
    return SerialEngine


def _toy_job_inputs(tmp_path):
    clips = tmp_path / "clips"
    (clips / "a").mkdir(parents=True)
    for name in ("one.wav", "a/two.wav"):
        with open(SPEECH, "rb") as src, open(clips / name, "wb") as dst:
            dst.write(src.read())
    model = tmp_path / "toy.model"
    model.write_bytes(b"the toy mode opens no file, but a job hashes its model")
    return clips, model


def test_toy_engine_runs_a_toy_job_through_the_command(toy, serial, tmp_path, capsys):
    from synctalk_audio.jobs import run_job

    clips, model = _toy_job_inputs(tmp_path)
    out = tmp_path / "out"
    argv = ["process", "--mode", "toy", "--model", str(model), "--audio", str(clips)]
    argv += ["--engine", "serial", "--output", str(out)]
    assert cli.main(argv) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"job: 2 items -> {out}: 2 written, 0 unchanged (skipped), 0 failed;")
    assert "(1 worker(s) x " in said and "engine serial)" in said
    (engine,) = serial.runs
    assert sorted(item.key for item in engine.items) == ["a/two", "one"]
    assert sorted(os.listdir(out)) == ["a", "one", RECORD_NAME]
    with Pipeline(mode="toy") as pipe:
        want = pipe.process(SPEECH).array
    for key in ("one", "a/two"):
        assert np.load(out / key / "aud_toy.npy").tobytes() == want.tobytes()
        meta = json.loads((out / key / "metadata.json").read_text())
        assert meta["settings"]["mode"] == "toy"
        assert meta["input"]["size"] == os.path.getsize(SPEECH)
    records = [json.loads(line) for line in (out / RECORD_NAME).read_text().splitlines()]
    assert [(r["output"], r["status"]) for r in records] == [("a/two", "done"), ("one", "done")]
    # Run again: nothing to do, the engine gets no item.
    assert cli.main([*argv, "-q"]) == 0
    assert serial.runs[-1].items == []
    # Its own options, from the command and from Python; another engine's are refused.
    assert cli.main([*argv, "--note", "from the command", "-q"]) == 0
    assert serial.runs[-1].note == "from the command"
    assert cli.main([*argv[:-4], "--output", str(tmp_path / "o2"), "--note", "x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "synctalk-audio process: error: --note is an option of --engine serial, not of --engine"
        " local: add --engine serial or leave out --note"
    )
    summary = run_job(out, [clips], mode="toy", model=model, engine="serial",
                      engine_options={"note": "x"}, force=True)  # fmt: skip
    assert (summary.engine, len(summary.done), serial.runs[-1].note) == ("serial", 2, "x")
    with pytest.raises(ParameterError, match="the serial engine has no option 'address'"):
        run_job(out, [clips], mode="toy", model=model, engine="serial",
                engine_options={"address": "h:1"})  # fmt: skip
    assert cli.main([*argv, "--address", "h:1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "synctalk-audio process: error: --address is an option of --engine ray, not of --engine"
        " serial: add --engine ray or leave out --address"
    )


def test_an_engine_lacking_a_member_is_named(toy, serial, monkeypatch, tmp_path):
    from synctalk_audio.jobs import run_job

    clips, model = _toy_job_inputs(tmp_path)
    monkeypatch.delattr(SerialEngine, "check")
    with pytest.raises(TypeError, match=r"engine serial \(.*SerialEngine\) lacks check: an eng"):
        run_job(tmp_path / "out", [clips], mode="toy", model=model, engine="serial")
