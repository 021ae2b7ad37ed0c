"""`synctalk-audio validate` reads only what an output directory holds, within bounds.

- Each feature file must be a regular file of a mode's name holding float32
  of that mode's row shape, at least one row, exactly as many bytes as its
  header declares: anything else (complex, strings, structured, 0-D, 1-D,
  empty, truncated, forged headers) is one line naming the file and what it
  holds, exit 2, checked before a value is read.
- frames/ holds frame_NNNNN.bin regular files only: a device or a FIFO is
  refused without being read (no hang, no gigabytes read).
- Per-row cosines are over each row's whole shape ((2, 1024), (16, 512)).
- Memory: the feature files are read a block at a time (tracemalloc peak on a
  40 MB pair of files, generous bound).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from synctalk_audio import ParameterError, cli
from synctalk_audio.outputs.files import FRAME_HEADER
from synctalk_audio.outputs.validate import compare_outputs

ROWS = 6


def make_output(path, name="aud_ave.npy", rows=None, frames=0, frame_size=8192):
    """A minimal output directory: the feature file and ``frames`` frame files."""
    os.makedirs(path)
    if rows is None:
        rows = np.random.default_rng(0).standard_normal((ROWS, 512)).astype(np.float32)
    np.save(os.path.join(path, name), rows)
    if frames:
        os.mkdir(os.path.join(path, "frames"))
        for i in range(frames):
            values = np.full(frame_size, i, "<f4")
            with open(os.path.join(path, "frames", f"frame_{i:05d}.bin"), "wb") as f:
                f.write(FRAME_HEADER.pack(frame_size) + values.tobytes())
    return path


@pytest.fixture
def pair(tmp_path):
    ref = make_output(str(tmp_path / "ref"), frames=3)
    cand = make_output(str(tmp_path / "cand"), frames=3)
    return ref, cand


def refused(capsys, ref, cand):
    """Run validate; return its one error line (exit 2, nothing on stdout)."""
    assert cli.main(["validate", ref, cand]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("synctalk-audio validate: error: "), lines[0]
    assert "internal error" not in lines[0] and "Traceback" not in lines[0]
    return lines[0]


def test_complex_feature_file_is_refused(pair, capsys):
    """A complex64 copy with imaginary part 5 used to pass as 'OK: tolerance 1e-05'."""
    ref, cand = pair
    rows = np.load(os.path.join(ref, "aud_ave.npy"))
    np.save(os.path.join(cand, "aud_ave.npy"), rows.astype(np.complex64) + 5j)
    line = refused(capsys, ref, cand)
    assert os.path.join(cand, "aud_ave.npy") in line
    assert "complex64" in line and "float32" in line and "(rows, 512)" in line


@pytest.mark.parametrize(
    ("array", "shown"),
    [
        (np.array([["1.5", "2"]] * 3), "<U3"),
        (np.zeros(4, [("a", "<f4"), ("b", "<f4")]), "('a', '<f4')"),
        (np.zeros((ROWS, 512), np.float64), "float64"),
        (np.zeros((ROWS, 512), np.int16), "int16"),
    ],
)
def test_other_dtypes_are_refused(pair, capsys, array, shown):
    ref, cand = pair
    np.save(os.path.join(cand, "aud_ave.npy"), array)
    line = refused(capsys, ref, cand)
    assert os.path.join(cand, "aud_ave.npy") in line
    assert shown in line and "not float32" in line


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.float32(3.0), "has shape ()"),
        (np.zeros(512, np.float32), "has shape (512,)"),
        (np.zeros((ROWS, 256), np.float32), "has shape (6, 256)"),
        (np.zeros((ROWS, 2, 256), np.float32), "has shape (6, 2, 256)"),
        (np.zeros((0, 512), np.float32), "holds no rows"),
    ],
)
@pytest.mark.parametrize("side", ["reference", "candidate", "both"])
def test_shapes_other_than_the_modes_rows_are_refused(pair, capsys, array, expected, side):
    ref, cand = pair
    sides = {"reference": [ref], "candidate": [cand], "both": [ref, cand]}[side]
    for path in sides:
        np.save(os.path.join(path, "aud_ave.npy"), array)
    line = refused(capsys, ref, cand)
    assert os.path.join(sides[0], "aud_ave.npy") in line
    assert expected in line and "(rows, 512)" in line


def test_truncated_feature_file_names_the_file(pair, capsys):
    ref, cand = pair
    path = os.path.join(cand, "aud_ave.npy")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:1000])
    line = refused(capsys, ref, cand)
    assert path in line and "truncated" in line and "(6, 512)" in line


def test_bytes_past_the_declared_values_are_refused(pair, capsys):
    ref, cand = pair
    path = os.path.join(cand, "aud_ave.npy")
    with open(path, "ab") as f:
        f.write(b"\0" * 8)
    line = refused(capsys, ref, cand)
    assert path in line and "8 bytes past" in line


def test_not_a_npy_file_is_refused(pair, capsys):
    ref, cand = pair
    path = os.path.join(cand, "aud_ave.npy")
    with open(path, "wb") as f:
        f.write(b"hello, this is not a .npy file")
    line = refused(capsys, ref, cand)
    assert path in line and "not a NumPy .npy file" in line


def test_forged_header_is_refused_before_reading(pair):
    """A 4 KB .npy claiming (2**32 - 1, 512) float32 asked for 8 TB before failing."""
    ref, cand = pair
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (2**32 - 1, 512)}
    )
    with open(os.path.join(cand, "aud_ave.npy"), "wb") as f:
        f.write(header.getvalue().ljust(4096, b"\0"))
    tracemalloc.start()
    try:
        with pytest.raises(ParameterError, match=r"truncated.*\(4294967295, 512\)"):
            compare_outputs(ref, cand)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


def dev_zero_or_skip():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")


def run_bounded(ref, cand):
    """validate in a child with 1 GiB of address space and a time limit.

    Reading a device or a FIFO is what these tests guard against: should
    that come back, the child fails (out of memory, or the timeout) instead of
    taking the machine's memory or hanging the suite.
    """

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run(
        [sys.executable, "-m", "synctalk_audio", "validate", ref, cand],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit if os.name == "posix" else None,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synctalk-audio validate: error: "), lines
    return lines[0]


def test_an_entry_of_frames_that_is_no_frame_file_is_refused(pair):
    """frames/zzz -> /dev/zero used to be read (2.7 GB) until memory ran out."""
    dev_zero_or_skip()
    ref, cand = pair
    for side in (ref, cand):
        os.symlink("/dev/zero", os.path.join(side, "frames", "zzz"))
    line = run_bounded(ref, cand)
    assert os.path.join(ref, "frames", "zzz") in line and "frame_NNNNN.bin" in line


@pytest.mark.parametrize("where", ["frames/frame_00001.bin", "aud_ave.npy"])
def test_a_device_is_refused_without_reading_it(pair, where):
    dev_zero_or_skip()
    ref, cand = pair
    path = os.path.join(cand, *where.split("/"))
    os.remove(path)
    os.symlink("/dev/zero", path)
    line = run_bounded(ref, cand)
    assert path in line and "character device" in line and "not a regular file" in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("where", ["frames/frame_00001.bin", "aud_ave.npy"])
def test_a_fifo_is_refused_without_blocking(pair, where):
    """A FIFO in place of a file used to block validate forever."""
    ref, cand = pair
    path = os.path.join(cand, *where.split("/"))
    os.remove(path)
    os.mkfifo(path)
    line = run_bounded(ref, cand)
    assert path in line and "FIFO" in line


def test_a_frame_file_of_another_size_is_refused(tmp_path, capsys):
    ref = make_output(str(tmp_path / "ref"), frames=2, frame_size=100)
    cand = make_output(str(tmp_path / "cand"), frames=2, frame_size=100)
    line = refused(capsys, ref, cand)
    assert os.path.join(ref, "frames", "frame_00000.bin") in line
    assert "declares 100 values" in line and "8192 (32, 16, 16)" in line


def test_big_endian_float32_is_read_by_value(pair, capsys):
    ref, cand = pair
    rows = np.load(os.path.join(ref, "aud_ave.npy"))
    np.save(os.path.join(cand, "aud_ave.npy"), rows.astype(">f4"))
    assert cli.main(["validate", ref, cand]) == 0
    assert capsys.readouterr().out.strip().endswith("OK: tolerance 1e-05")


@pytest.mark.parametrize(
    ("name", "row_shape"), [("aud_hu.npy", (2, 1024)), ("aud_wenet.npy", (16, 512))]
)
def test_row_cosine_is_over_the_whole_row(tmp_path, name, row_shape):
    """Row 2 of the candidate has its first sub-row negated: its cosine is over the whole row."""
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((5, *row_shape)).astype(np.float32)
    changed = rows.copy()
    changed[2, 0] *= -1
    ref = make_output(str(tmp_path / "ref"), name, rows)
    cand = make_output(str(tmp_path / "cand"), name, changed)
    report = compare_outputs(ref, cand)
    a, b = rows[2].astype(np.float64).ravel(), changed[2].astype(np.float64).ravel()
    want = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert report["features_min_cosine"] == pytest.approx(want, abs=1e-12)
    assert report["features_max_abs"] == pytest.approx(2 * np.abs(rows[2, 0]).max())


def test_feature_files_are_read_a_block_at_a_time(tmp_path):
    """Two 40 MB feature files compared with a few megabytes of NumPy memory."""
    rows = np.random.default_rng(2).standard_normal((20000, 512)).astype(np.float32)
    ref = make_output(str(tmp_path / "ref"), rows=rows)
    cand = make_output(str(tmp_path / "cand"), rows=rows + np.float32(1e-3))
    del rows
    tracemalloc.start()
    try:
        report = compare_outputs(ref, cand)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report["features_shape"] == [[20000, 512], [20000, 512]]
    assert report["features_max_abs"] == pytest.approx(1e-3, rel=1e-2)
    file_size = os.path.getsize(os.path.join(ref, "aud_ave.npy"))
    assert peak < file_size / 2, (peak, file_size)


def test_not_a_directory(tmp_path, capsys):
    ref = make_output(str(tmp_path / "ref"))
    line = refused(capsys, ref, str(tmp_path / "missing"))
    assert str(tmp_path / "missing") + " does not exist" in line
