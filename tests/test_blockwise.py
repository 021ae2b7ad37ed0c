"""Block-by-block processing of files (flat memory) equals the in-memory path, byte for byte.

Tolerance: none. `Pipeline.process_to` / `process_into` decode, resample,
mel, encode and write block by block; the files they write must have the
very bytes of `Pipeline.process` + `write_features` on the whole input — the
project's own stream == batch promise — for every golden input (13 formats
and rates), several frame rates, both pad modes and any block size. Decoding
in blocks must give the samples of one read. Peak memory is measured in
benchmarks/long_file.py, not here.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import soundfile as sf

from synctalk_audio import AudioLoadError, ParameterError, load_audio
from synctalk_audio.engines.pipeline import source_facts
from synctalk_audio.frontends.audio import AudioBlocks, is_regular_audio_file
from synctalk_audio.outputs.files import NpyRowWriter, write_features
from synctalk_audio.pipeline import Pipeline

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")
MP3 = os.path.join(DATA, "speech_24k.mp3")


def tree(directory: str) -> dict[str, bytes]:
    """Every file under ``directory`` but metadata.json (its timings differ), by relative path."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            if name != "metadata.json":
                with open(path, "rb") as f:
                    files[os.path.relpath(path, directory)] = f.read()
    return files


def in_memory(pipe: Pipeline, source: str, directory: str, frames: bool = True) -> dict:
    """Today's path: the whole input at once, then write_features."""
    os.mkdir(directory)
    features = pipe.process(source)
    write_features(directory, features, frames=frames)
    return features.metadata


def assert_same_tree(got: dict[str, bytes], want: dict[str, bytes]) -> None:
    assert sorted(got) == sorted(want), "different file lists"
    for name in want:
        assert got[name] == want[name], f"{name} differs (exact bytes required)"


@pytest.fixture(scope="module")
def pipes(test_encoder):
    made: dict[tuple[float, str], Pipeline] = {}

    def get(fps: float = 25.0, pad_mode: str = "constant") -> Pipeline:
        if (fps, pad_mode) not in made:
            made[(fps, pad_mode)] = Pipeline(test_encoder.onnx, fps=fps, pad_mode=pad_mode)
        return made[(fps, pad_mode)]

    return get


# -- decoding in blocks --------------------------------------------------------


@pytest.mark.parametrize("block_frames", [1, 7, 576, 4096, 1 << 20])
def test_blocks_equal_one_read(golden_case, block_frames):
    """Concatenated blocks are the samples of librosa's single read, bit for bit.

    SoundFile.read in blocks is not: it seeks after every read, which resets
    the MP3 decoder (up to 0.09 off on speech_24k.mp3).
    """
    with sf.SoundFile(golden_case.path) as f:
        want = f.read(frames=-1, dtype="float32", always_2d=True)
    if block_frames == 1 and want.shape[0] > 40000:
        block_frames = 3  # same coverage, a quarter of the time
    with AudioBlocks(golden_case.path, block_frames=block_frames) as blocks:
        parts = list(blocks)
        assert blocks.frames_read == want.shape[0]
    assert all(p.dtype == np.float32 and p.shape[1] == want.shape[1] for p in parts)
    assert all(p.shape[0] <= block_frames for p in parts)
    got = np.concatenate(parts)
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_open_errors_are_the_loaders(tmp_path):
    """A file that cannot be opened gives load_audio's own error."""
    garbage = tmp_path / "text.wav"
    garbage.write_text("not audio at all\n" * 20)
    mp3_head = tmp_path / "head.mp3"
    with open(MP3, "rb") as f:
        mp3_head.write_bytes(f.read(100))
    for path in (garbage, mp3_head):
        with pytest.raises(AudioLoadError) as loader:
            load_audio(str(path))
        with pytest.raises(AudioLoadError) as blocks:
            AudioBlocks(str(path))
        assert str(blocks.value) == str(loader.value)


def test_decoding_error_part_way_raises(tmp_path):
    """A FLAC cut in half decodes 12000 samples, then fails: AudioLoadError, not short audio."""
    with open(os.path.join(DATA, "speech_16k.flac"), "rb") as f:
        blob = f.read()
    half = tmp_path / "half.flac"
    half.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AudioLoadError, match=r"half\.flac after \d+ samples: .*truncated"):
        with AudioBlocks(str(half), block_frames=1000) as blocks:
            for _ in blocks:
                pass


def test_nan_samples_are_refused(tmp_path):
    path = str(tmp_path / "nan.wav")
    samples = np.zeros(8000, np.float32)
    samples[5000] = np.nan
    sf.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match="NaN or infinite"):
        with AudioBlocks(path, block_frames=1000) as blocks:
            list(blocks)


def test_only_regular_files_go_block_by_block(tmp_path):
    assert is_regular_audio_file(SPEECH)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert not is_regular_audio_file(str(empty))
    assert not is_regular_audio_file(str(tmp_path))
    assert not is_regular_audio_file(str(tmp_path / "missing.wav"))
    assert not is_regular_audio_file(io.BytesIO(b"RIFF"))


# -- aud_ave.npy row by row ------------------------------------------------------


@pytest.mark.parametrize("rows", [0, 1, 5, 1499])
def test_npy_row_writer_equals_np_save(tmp_path, rows):
    data = np.random.default_rng(rows).standard_normal((rows, 512)).astype(np.float32)
    np.save(tmp_path / "want.npy", data)
    with NpyRowWriter(str(tmp_path / "got.npy"), 512) as writer:
        for begin in range(0, rows, 7):
            writer.append(data[begin : begin + 7])
        writer.finish()
    assert (tmp_path / "got.npy").read_bytes() == (tmp_path / "want.npy").read_bytes()


def test_npy_header_size_does_not_depend_on_the_row_count(tmp_path):
    """Why the header can be written last: same size for 0 rows and 10**18 rows."""
    writer = NpyRowWriter(str(tmp_path / "x.npy"), 512)
    try:
        sizes = {len(writer._header(rows)) for rows in (0, 9, 10**6, 10**12, 10**18)}
    finally:
        writer.close()
    assert sizes == {128}


# -- the whole path --------------------------------------------------------------


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97])
def test_block_path_equals_in_memory_path(golden_case, pipes, tmp_path, fps, pad_mode):
    """Every golden input, three frame rates, both pad modes, many small blocks."""
    pipe = pipes(fps, pad_mode)
    want_meta = in_memory(pipe, golden_case.path, str(tmp_path / "want"))
    os.mkdir(tmp_path / "got")
    got_meta = pipe.process_into(golden_case.path, str(tmp_path / "got"), block_frames=1001)
    want = tree(str(tmp_path / "want"))
    assert_same_tree(tree(str(tmp_path / "got")), want)
    assert len(want) == want_meta["counts"]["frames"] + 1
    # A file's output also names its size, mtime and SHA-256 (what a job's resume checks).
    assert got_meta["input"] == {**want_meta["input"], **source_facts(golden_case.path)}
    assert got_meta["counts"] == want_meta["counts"]
    for key, value in want_meta["settings"].items():
        assert got_meta["settings"][key] == value
    assert set(want_meta["timings"]) <= set(got_meta["timings"])
    with open(tmp_path / "got" / "metadata.json", encoding="utf-8") as f:
        assert json.load(f) == got_meta


@pytest.mark.parametrize(
    ("name", "block_frames"), [("speech_16k_0p25s.wav", 1), ("speech_24k.mp3", 5)]
)
def test_tiny_blocks(pipes, tmp_path, name, block_frames):
    path = os.path.join(DATA, name)
    in_memory(pipes(), path, str(tmp_path / "want"))
    os.mkdir(tmp_path / "got")
    pipes().process_into(path, str(tmp_path / "got"), block_frames=block_frames)
    assert_same_tree(tree(str(tmp_path / "got")), tree(str(tmp_path / "want")))


def test_frames_are_written_while_decoding(pipes, tmp_path):
    """20 s in 1 s blocks: frame files and aud_ave rows appear before the input ends."""
    speech = load_audio(SPEECH)
    long = str(tmp_path / "long.wav")
    sf.write(long, np.tile(speech, 10), 16000, subtype="FLOAT")
    in_memory(pipes(), long, str(tmp_path / "want"))
    got = tmp_path / "got"
    os.mkdir(got)
    seen: list[tuple[int, int, int]] = []

    def progress(done: int, total: int) -> None:
        frames = len(os.listdir(got / "frames"))
        seen.append((done, total, frames))

    pipes().process_into(long, str(got), progress=progress, block_frames=16000)
    assert_same_tree(tree(str(got)), tree(str(tmp_path / "want")))
    assert len(seen) == 21 and seen[-1][0] == seen[-1][1] == 320000
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    midway = seen[9]  # after 10 of 20 seconds
    assert midway[0] == 160000 and 200 < midway[2] < 250  # frames up to about 10 s - 0.45 s


def test_truncated_mp3_declares_more_than_it_decodes(pipes, tmp_path):
    """libsndfile declares 43200 frames for half of speech_24k.mp3 but decodes 20207."""
    with open(MP3, "rb") as f:
        blob = f.read()
    half = str(tmp_path / "half.mp3")
    with open(half, "wb") as f:
        f.write(blob[: len(blob) // 2])
    with sf.SoundFile(half) as f:
        declared = f.frames
    want_meta = in_memory(pipes(), half, str(tmp_path / "want"))
    assert want_meta["input"]["duration_s"] * 24000 < declared  # the case under test
    os.mkdir(tmp_path / "got")
    got_meta = pipes().process_into(half, str(tmp_path / "got"), block_frames=4096)
    assert_same_tree(tree(str(tmp_path / "got")), tree(str(tmp_path / "want")))
    assert got_meta["counts"] == want_meta["counts"]


def test_no_frames(pipes, tmp_path):
    in_memory(pipes(), MP3, str(tmp_path / "want"), frames=False)
    meta = pipes().process_to(MP3, str(tmp_path / "got"), frames=False)
    assert sorted(os.listdir(tmp_path / "got")) == ["aud_ave.npy", "metadata.json"]
    assert_same_tree(tree(str(tmp_path / "got")), tree(str(tmp_path / "want")))
    assert meta["settings"]["frame_files"] is False


def test_arrays_and_file_objects_take_the_in_memory_path(pipes, tmp_path):
    in_memory(pipes(), SPEECH, str(tmp_path / "want"))
    want = tree(str(tmp_path / "want"))
    pipes().process_to(load_audio(SPEECH), str(tmp_path / "array"))
    with open(SPEECH, "rb") as f:
        pipes().process_to(f, str(tmp_path / "fileobj"))
    assert_same_tree(tree(str(tmp_path / "array")), want)
    assert_same_tree(tree(str(tmp_path / "fileobj")), want)


# -- failures leave nothing half-written ------------------------------------------


def previous_output(pipe: Pipeline, out: str) -> dict[str, bytes]:
    pipe.process_to(SPEECH, out)
    return tree(out)


def test_decoding_error_leaves_previous_output(pipes, tmp_path):
    out = str(tmp_path / "out")
    before = previous_output(pipes(), out)
    with open(os.path.join(DATA, "speech_16k.flac"), "rb") as f:
        blob = f.read()
    half = tmp_path / "half.flac"
    half.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AudioLoadError):
        pipes().process_to(str(half), out)
    assert tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["half.flac", "out"]


def test_too_short_leaves_nothing(pipes, tmp_path):
    short = str(tmp_path / "short.wav")
    sf.write(short, np.full(2999, 0.1, np.float32), 16000)
    with pytest.raises(ParameterError, match=r"too short: need at least 0\.1875 s"):
        pipes().process_to(short, str(tmp_path / "out"))
    assert os.listdir(tmp_path) == ["short.wav"]


def test_interrupt_part_way_leaves_previous_output(pipes, tmp_path):
    out = str(tmp_path / "out")
    before = previous_output(pipes(), out)
    written = []

    def interrupt(done: int, total: int) -> None:
        staging = [n for n in os.listdir(tmp_path) if n.startswith(".out.tmp-")]
        written.append(len(os.listdir(tmp_path / staging[0] / "frames")))
        if done > 20000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipes().process_to(MP3, out, progress=interrupt, block_frames=4096)
    assert written[-1] > 0  # frames were being written when the interrupt came
    assert tree(out) == before
    assert os.listdir(tmp_path) == ["out"]


def test_command_never_holds_the_whole_file(test_encoder, pipes, tmp_path, monkeypatch):
    """`synctalk-audio process` goes block by block: the whole-file loader is never called."""
    import synctalk_audio.modes.ave as ave
    from synctalk_audio import cli

    in_memory(pipes(30.0), MP3, str(tmp_path / "want"))

    def whole_file(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command loaded the whole file")

    monkeypatch.setattr(ave, "load_audio_with_info", whole_file)
    out = str(tmp_path / "got")
    argv = ["process", "--audio", MP3, "--model", test_encoder.onnx, "--output", out]
    assert cli.main([*argv, "--fps", "30", "-q"]) == 0
    assert_same_tree(tree(out), tree(str(tmp_path / "want")))
