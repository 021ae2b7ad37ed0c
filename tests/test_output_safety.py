"""The output directory loses nothing: what may be replaced, signals, stale staging, two runs.

An existing directory is replaced only when it is empty or holds a previous
output of this tool, or with --overwrite; never when it is or contains the
working directory, the home directory, the filesystem root or the input.
SIGINT, SIGTERM and SIGHUP leave the previous output as it was (exit 128 +
signal); staging directories of dead runs are removed by the next run; of two
runs on one output, the second is refused while the first holds the lock.
Slow steps in child processes wait on files and pipes, never on time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from synctalk_audio import cli
from synctalk_audio.errors import ParameterError
from synctalk_audio.outputs import directory as output_module
from synctalk_audio.outputs.directory import atomic_file, atomic_output_dir, check_output_dir
from synctalk_audio.outputs.files import write_metadata

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")

# A child that runs the command with frame writing slowed down: after the 5th
# frame file it prints "ready" and waits until the file $SLOW_GO exists (or
# forever without it), so a test can act while the staging directory exists.
SLOW_CHILD = r"""
import os, sys, time
import synctalk_audio.outputs.sink as output
from synctalk_audio import cli

go = os.environ.get("SLOW_GO")
original = output.write_frame_file
written = 0

def slow(path, frame):
    global written
    original(path, frame)
    written += 1
    if written == 5:
        print("ready", flush=True)
        while not (go and os.path.exists(go)):
            time.sleep(0.01)

output.write_frame_file = slow
sys.exit(cli.main(sys.argv[1:]))
"""


def run(*args: str, cwd: str = ROOT, env: dict[str, str] | None = None, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        stdin=stdin,
        timeout=300,
    )


def process(model: str, out: str, *extra: str, audio: str = SPEECH, **kw):
    return run("process", "--audio", audio, "--model", model, "--output", out, "-q", *extra, **kw)


def slow_child(model: str, out: str, *extra: str, go: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    if go is not None:
        env["SLOW_GO"] = go
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHILD, "process", "--audio", SPEECH, "--model", model]
        + ["--output", out, "-q", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline()  # blocks until 5 frames are in the staging directory
    if line != "ready\n":
        child.kill()
        _, err = child.communicate()
        raise AssertionError(f"slow child did not get to its 5th frame: {line!r} {err}")
    return child


def refused(done: subprocess.CompletedProcess[str], expect: str, status: int = 2) -> None:
    """Exit ``status``, one line on stderr containing ``expect``, no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, (done.returncode, done.stderr)
    assert len(lines) == 1 and expect in lines[0], done.stderr


def snapshot(folder: str) -> dict[str, bytes | str | None]:
    """Every path under ``folder`` (relative): file contents, link targets, None for directories."""
    found: dict[str, bytes | str | None] = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(top, name)
            key = os.path.relpath(path, folder)
            if os.path.islink(path):
                found[key] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                found[key] = None
            else:
                with open(path, "rb") as f:
                    found[key] = f.read()
    return found


def assert_complete_output(out: str, fps: float = 25.0) -> dict:
    """``out`` holds one whole output of this tool: metadata, aud_ave, every frame."""
    with open(os.path.join(out, "metadata.json"), encoding="utf-8") as f:
        meta = json.load(f)
    assert meta["written_by"] == "synctalk-audio"
    assert meta["settings"]["fps"] == fps
    count = meta["counts"]["frames"]
    assert np.load(os.path.join(out, "aud_ave.npy")).shape == (count, 512)
    assert sorted(os.listdir(os.path.join(out, "frames"))) == [
        f"frame_{i:05d}.bin" for i in range(count)
    ]
    return meta


def user_files(folder) -> None:
    """A directory as a user has it: files, a subdirectory, the audio."""
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("keep me\n")
    with open(os.path.join(folder, "sub", "more.txt"), "w") as f:
        f.write("and me\n")
    with open(SPEECH, "rb") as src, open(os.path.join(folder, "in.wav"), "wb") as dst:
        dst.write(src.read())


@contextlib.contextmanager
def read_only(path: str):
    """Make ``path`` a directory whose entries this user cannot delete.

    chmod 555 for a normal user; root ignores modes, so for root the
    immutable attribute (chattr +i), which binds root too.
    """
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield
        finally:
            os.chmod(path, 0o755)
        return
    done = subprocess.run(["chattr", "+i", path], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i failed ({done.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ---------------------------------------------------------------------------
# what may be replaced, through the command


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_cwd_as_output_is_refused(test_encoder, tmp_path, overwrite):
    work = tmp_path / "d"
    user_files(work)
    before = snapshot(str(work))
    extra = ["--overwrite"] if overwrite else []
    done = process(test_encoder.onnx, ".", *extra, audio="in.wav", cwd=str(work))
    refused(done, f"refusing to replace {work}: it is the current working directory")
    assert snapshot(str(work)) == before
    assert os.listdir(tmp_path) == ["d"]


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_parent_of_cwd_as_output_is_refused(test_encoder, tmp_path, overwrite):
    work = tmp_path / "d"
    user_files(work)
    before = snapshot(str(tmp_path))
    extra = ["--overwrite"] if overwrite else []
    done = process(test_encoder.onnx, "..", *extra, audio="in.wav", cwd=str(work))
    refused(done, "it contains the current working directory")
    assert snapshot(str(tmp_path)) == before


def test_empty_output_is_an_error(test_encoder, tmp_path):
    user_files(tmp_path)
    before = snapshot(str(tmp_path))
    done = process(test_encoder.onnx, "", audio="in.wav", cwd=str(tmp_path))
    refused(done, "the output path is empty")
    assert snapshot(str(tmp_path)) == before
    done = run("stream", "--model", test_encoder.onnx, "--output", "", cwd=str(tmp_path))
    refused(done, "the output path is empty")
    assert snapshot(str(tmp_path)) == before


PROC = "/proc"  # a folder that refuses new entries, even from root


@pytest.mark.skipif(not os.path.isdir(PROC), reason="needs Linux /proc")
def test_output_in_a_folder_that_refuses_entries_is_one_clear_line(test_encoder, tmp_path):
    """/proc/x: one line naming the output, its folder and what to do; no errno dump."""
    out = os.path.join(PROC, "x")
    expect = f"cannot create output {out}: the folder {PROC} is not writable ("
    flac = os.path.join(DATA, "speech_16k.flac")
    with open(SPEECH, "rb") as wav:
        stream = run(
            "stream", "--model", test_encoder.onnx, "--output", out, "--no-stdout", stdin=wav
        )
    for done in (
        process(test_encoder.onnx, out),
        process(test_encoder.onnx, out, "--audio", flac),  # a job
        stream,
    ):
        refused(done, expect)
        assert done.stderr.rstrip().endswith("; choose another --output"), done.stderr
        assert "Errno" not in done.stderr, done.stderr
    with pytest.raises(ParameterError, match=rf"cannot create output {out}: the folder"):
        with atomic_output_dir(out):
            raise AssertionError("must not get here")


def test_output_in_a_read_only_folder_is_one_clear_line(test_encoder, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "out"
    with read_only(str(folder)):
        done = process(test_encoder.onnx, str(out))
    refused(done, f"cannot create output {out}: the folder {folder} is not writable (")
    assert done.stderr.rstrip().endswith("; choose another --output"), done.stderr
    assert os.listdir(folder) == []


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_output_containing_the_input_is_refused(test_encoder, tmp_path, overwrite):
    proj = tmp_path / "proj"
    user_files(proj)
    before = snapshot(str(tmp_path))
    extra = ["--overwrite"] if overwrite else []
    done = process(test_encoder.onnx, "proj", *extra, audio="proj/in.wav", cwd=str(tmp_path))
    refused(done, f"refusing to replace {proj}: it contains the input file proj/in.wav")
    assert snapshot(str(tmp_path)) == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="stdin's path comes from /proc")
def test_stream_output_containing_its_stdin_file_is_refused(test_encoder, tmp_path):
    proj = tmp_path / "proj"
    user_files(proj)
    before = snapshot(str(tmp_path))
    with open(proj / "in.wav", "rb") as stdin:
        done = run(
            "stream",
            "--model",
            test_encoder.onnx,
            "--output",
            str(proj),
            "--overwrite",
            "--no-stdout",
            stdin=stdin,
        )
    refused(done, "it contains the input file")
    assert snapshot(str(tmp_path)) == before


def test_foreign_directory_needs_overwrite(test_encoder, tmp_path):
    out = tmp_path / "out"
    user_files(out)
    before = snapshot(str(out))
    done = process(test_encoder.onnx, str(out))
    refused(done, f"refusing to replace {out}: it holds in.wav, which synctalk-audio does not")
    assert "choose a new or empty directory, or pass --overwrite" in done.stderr
    assert snapshot(str(out)) == before
    done = run(
        "stream", "--model", test_encoder.onnx, "--output", str(out), stdin=subprocess.DEVNULL
    )
    refused(done, "which synctalk-audio does not write")
    assert snapshot(str(out)) == before

    done = process(test_encoder.onnx, str(out), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["aud_ave.npy", "frames", "metadata.json"]
    assert_complete_output(str(out))
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize(
    "extra",
    ["frames/notes.txt", "frames/frame_1.bin", "aud_ave.txt", ".hidden", "frames/sub/"],
)
def test_previous_output_with_anything_else_is_foreign(test_encoder, tmp_path, extra):
    out = tmp_path / "out"
    assert process(test_encoder.onnx, str(out)).returncode == 0
    if extra.endswith("/"):
        (out / extra).mkdir()
    else:
        (out / extra).write_text("mine")
    before = snapshot(str(out))
    done = process(test_encoder.onnx, str(out), "--fps", "30")
    refused(done, f"it holds {extra.rstrip('/')}, which synctalk-audio does not write")
    assert snapshot(str(out)) == before


@pytest.mark.parametrize("metadata", ['{"counts": {}}', "not json", "[1, 2]"])
def test_metadata_json_not_ours_is_foreign(test_encoder, tmp_path, metadata):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metadata.json").write_text(metadata)
    np.save(out / "aud_ave.npy", np.zeros((3, 512), np.float32))
    before = snapshot(str(out))
    done = process(test_encoder.onnx, str(out))
    refused(done, "its metadata.json was not written by synctalk-audio")
    assert snapshot(str(out)) == before


def test_own_previous_output_is_replaced(test_encoder, tmp_path):
    out = tmp_path / "out"
    assert process(test_encoder.onnx, str(out)).returncode == 0
    first = assert_complete_output(str(out))
    np.save(out / "aud_hu.npy", np.zeros((2, 2), np.float32))  # another mode's features
    done = process(test_encoder.onnx, str(out), "--fps", "30")
    assert done.returncode == 0, done.stderr
    second = assert_complete_output(str(out), fps=30.0)
    assert second["counts"]["frames"] != first["counts"]["frames"]
    assert sorted(os.listdir(out)) == ["aud_ave.npy", "frames", "metadata.json"]
    assert os.listdir(tmp_path) == ["out"]


def test_output_of_earlier_versions_is_recognised(test_encoder, tmp_path):
    """Before the written_by mark, metadata.json always named the package's version."""
    out = tmp_path / "out"
    assert process(test_encoder.onnx, str(out), "--no-frames").returncode == 0
    meta = json.loads((out / "metadata.json").read_text())
    del meta["written_by"]
    (out / "metadata.json").write_text(json.dumps(meta))
    done = process(test_encoder.onnx, str(out))
    assert done.returncode == 0, done.stderr
    assert_complete_output(str(out))


def test_empty_directory_is_used(test_encoder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = process(test_encoder.onnx, str(out))
    assert done.returncode == 0, done.stderr
    assert_complete_output(str(out))


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_home_directory_is_never_replaced(test_encoder, tmp_path, overwrite):
    home = tmp_path / "home"
    user_files(home)
    (tmp_path / "elsewhere").mkdir()
    env = dict(os.environ, HOME=str(home))
    before = snapshot(str(tmp_path))
    extra = ["--overwrite"] if overwrite else []
    done = process(test_encoder.onnx, str(home), *extra, cwd=str(tmp_path / "elsewhere"), env=env)
    refused(done, f"refusing to replace {home}: it is your home directory")
    done = process(test_encoder.onnx, "..", *extra, cwd=str(tmp_path / "elsewhere"), env=env)
    refused(done, "refusing to replace")
    done = process(test_encoder.onnx, str(tmp_path), "--overwrite", cwd=ROOT, env=env)
    refused(done, f"refusing to replace {tmp_path}: it contains your home directory")
    assert snapshot(str(tmp_path)) == before


def test_symlink_to_previous_output_is_written_through(test_encoder, tmp_path):
    target, link = tmp_path / "target", tmp_path / "link"
    assert process(test_encoder.onnx, str(target)).returncode == 0
    link.symlink_to("target")
    done = process(test_encoder.onnx, str(link), "--fps", "30")
    assert done.returncode == 0, done.stderr
    assert os.path.islink(link) and os.readlink(link) == "target"
    assert_complete_output(str(target), fps=30.0)
    assert sorted(os.listdir(tmp_path)) == ["link", "target"]


def test_symlink_to_foreign_or_nothing_is_refused(test_encoder, tmp_path):
    foreign, link, dangling = tmp_path / "foreign", tmp_path / "link", tmp_path / "dangling"
    user_files(foreign)
    link.symlink_to("foreign")
    dangling.symlink_to("nowhere")
    before = snapshot(str(tmp_path))
    refused(process(test_encoder.onnx, str(link)), f"refusing to replace {foreign}: it holds")
    refused(
        process(test_encoder.onnx, str(dangling)),
        f"output path {dangling} is a symbolic link to {tmp_path / 'nowhere'}, which does not",
    )
    assert snapshot(str(tmp_path)) == before
    assert os.path.islink(link) and os.path.islink(dangling)


def test_long_output_name(test_encoder, tmp_path):
    """A 250-character name: the staging names are shortened to fit NAME_MAX."""
    name = "n" * 250
    out = tmp_path / name
    for fps in ("25", "30"):
        done = process(test_encoder.onnx, str(out), "--fps", fps)
        assert done.returncode == 0, done.stderr
        assert_complete_output(str(out), fps=float(fps))
        assert os.listdir(tmp_path) == [name]
    with atomic_output_dir(str(out)) as staging:
        assert len(os.fsencode(os.path.basename(staging))) <= 255
        assert os.path.basename(staging).startswith(".nnnn")
        assert f".tmp-{os.getpid()}-" in os.path.basename(staging)
        lock = [n for n in os.listdir(tmp_path) if n.endswith(".lock")]
        assert len(lock) == 1 and len(lock[0]) <= 255
        write_metadata(staging, {"n": 1})


# ---------------------------------------------------------------------------
# replacement failures: nothing half-done, one line


def test_read_only_previous_output_is_reported(test_encoder, tmp_path):
    out = tmp_path / "out"
    assert process(test_encoder.onnx, str(out)).returncode == 0
    before = snapshot(str(out))
    with read_only(str(out)):
        done = process(test_encoder.onnx, str(out), "--fps", "30")
        refused(done, f"cannot replace {out}: no permission to delete the entries of {out}")
    assert snapshot(str(out)) == before
    assert os.listdir(tmp_path) == ["out"]


def test_undeletable_entry_inside_is_reported(test_encoder, tmp_path):
    out = tmp_path / "out"
    user_files(out)
    before = snapshot(str(out))
    with read_only(str(out / "sub")):
        done = process(test_encoder.onnx, str(out), "--overwrite")
        refused(done, f"no permission to delete the entries of {out / 'sub'}")
    assert snapshot(str(out)) == before
    assert os.listdir(tmp_path) == ["out"]


def test_mount_point_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: str(p) == str(out) or real(p))
    with pytest.raises(ParameterError, match=f"cannot replace {out}: it is a mount point"):
        check_output_dir(str(out))
    with pytest.raises(ParameterError, match="it is a mount point"):
        with atomic_output_dir(str(out)):
            pass
    assert os.listdir(tmp_path) == ["out"]


def test_failed_rename_leaves_previous_output(tmp_path, monkeypatch):
    """The kernel refuses to move the output (EBUSY, as for a mount point): all undone."""
    out = tmp_path / "out"
    with atomic_output_dir(str(out)) as staging:
        write_metadata(staging, {"run": 1})
    before = snapshot(str(out))
    real = os.rename

    def rename(src, dst):
        if str(src) == str(out):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(src))
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match=f"cannot replace {out}: Device or resource busy; it was"):
        with atomic_output_dir(str(out)) as staging:
            write_metadata(staging, {"run": 2})
    assert snapshot(str(out)) == before
    assert os.listdir(tmp_path) == ["out"]


def test_failed_second_rename_puts_previous_output_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with atomic_output_dir(str(out)) as staging:
        write_metadata(staging, {"run": 1})
    before = snapshot(str(out))
    real = os.rename

    def rename(src, dst):
        if str(dst) == str(out) and ".tmp-" in str(src):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match=f"cannot replace {out}: No space left on device; it was"):
        with atomic_output_dir(str(out)) as staging:
            write_metadata(staging, {"run": 2})
    assert snapshot(str(out)) == before
    assert os.listdir(tmp_path) == ["out"]


def test_undeletable_previous_output_is_reported_after_the_new_one_is_in(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with atomic_output_dir(str(out)) as staging:
        write_metadata(staging, {"run": 1})
    monkeypatch.setattr(output_module, "_rmtree", lambda p: [f"{p}/x: Operation not permitted"])
    with pytest.raises(OSError, match=f"wrote {out}, but could not delete the previous output"):
        with atomic_output_dir(str(out)) as staging:
            write_metadata(staging, {"run": 2})
    assert json.loads((out / "metadata.json").read_text())["run"] == 2


@pytest.fixture
def sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt during the test, as it does in a job's worker."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_between_the_renames_waits(tmp_path, monkeypatch, sigterm_interrupts):
    """SIGTERM while the previous output is moved aside is handled once the new one is in."""
    out = tmp_path / "out"
    with atomic_output_dir(str(out)) as staging:
        write_metadata(staging, {"run": 1})
    real = os.rename

    def rename(src, dst):
        real(src, dst)
        if str(src) == str(out):  # the previous output just moved aside
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(str(out)) as staging:
            write_metadata(staging, {"run": 2})
    assert json.loads((out / "metadata.json").read_text())["run"] == 2
    assert os.listdir(tmp_path) == ["out"]


def _stop_right_after(monkeypatch, module, name, when=lambda *a: True, before=False):
    """Patch ``module.name`` to send this process SIGTERM as soon as it returns (or before)."""
    real = getattr(module, name)

    def patched(*args, **kwargs):
        stop = when(*args)
        if stop and before:
            os.kill(os.getpid(), signal.SIGTERM)
        result = real(*args, **kwargs)
        if stop and not before:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(module, name, patched)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param((os, "mkdir", lambda path, *a: ".tmp-" in str(path)), id="staging-mkdir"),
        pytest.param((os, "open", lambda path, *a: str(path).endswith(".lock")), id="lock-open"),
        pytest.param((fcntl, "flock", lambda *a: True), id="lock-flock"),
    ],
)
def test_a_signal_while_starting_to_write_leaves_nothing(
    tmp_path, monkeypatch, sigterm_interrupts, call
):
    """SIGTERM just after the staging directory or the lock file is made: both are removed.

    A worker of a job that is stopped gets SIGTERM at any moment, also the
    moment it starts an item; nothing of that item may be left behind.
    """
    out = tmp_path / "out"
    _stop_right_after(monkeypatch, *call)
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(str(out)) as staging:
            write_metadata(staging, {"run": 1})
    assert os.listdir(tmp_path) == []


def test_a_signal_just_after_a_staging_file_is_made_leaves_nothing(
    tmp_path, monkeypatch, sigterm_interrupts
):
    target = tmp_path / "record.jsonl"
    _stop_right_after(monkeypatch, os, "open", lambda path, *a: str(path).endswith(".tmp"))
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(str(target)) as staging, open(staging, "w") as f:
            f.write("x")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("during", ["staging", "lock"])
def test_a_second_signal_during_cleanup_does_not_cut_it_short(
    tmp_path, monkeypatch, sigterm_interrupts, during
):
    """A second SIGTERM while a stopped run removes its staging or lock: both still go.

    A job's worker gets one SIGTERM per thread of its driver when that dies.
    """
    out = tmp_path / "out"
    started = []

    def once(path, *args):
        if started or (during == "lock") != str(path).endswith(".lock"):
            return False
        started.append(path)
        return True

    _stop_right_after(monkeypatch, os, "unlink", once, before=True)
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(str(out)) as staging:
            write_metadata(staging, {"run": 1})
            raise KeyboardInterrupt  # the first stop
    assert started
    assert os.listdir(tmp_path) == []


def test_a_held_sigterm_is_not_lost_behind_an_ignored_sigint(
    tmp_path, monkeypatch, sigterm_interrupts
):
    """A job's worker ignores SIGINT; a SIGTERM held after one must still stop it."""
    out = tmp_path / "out"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    real = os.mkdir

    def mkdir(path, *args, **kwargs):
        real(path, *args, **kwargs)
        if ".tmp-" in str(path):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches the whole group...
            os.kill(os.getpid(), signal.SIGTERM)  # ...then the driver stops its workers

    try:
        monkeypatch.setattr(os, "mkdir", mkdir)
        with pytest.raises(KeyboardInterrupt):
            with atomic_output_dir(str(out)) as staging:
                write_metadata(staging, {"run": 1})
    finally:
        signal.signal(signal.SIGINT, previous)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# the function itself


def test_function_refuses_what_the_command_refuses(tmp_path, monkeypatch):
    user_files(tmp_path / "d")
    monkeypatch.chdir(tmp_path / "d")
    before = snapshot(str(tmp_path))
    for path, overwrite, expect in [
        (".", True, "it is the current working directory"),
        ("", True, "the output path is empty"),
        (str(tmp_path), True, "it contains the current working directory"),
        ("/", True, "it is the filesystem root"),
    ]:
        with pytest.raises(ParameterError, match=expect):
            check_output_dir(path, overwrite=overwrite, inputs=["in.wav"])
        with pytest.raises(ParameterError, match=expect):
            with atomic_output_dir(path, overwrite=overwrite, inputs=["in.wav"]):
                raise AssertionError("must not get here")
    monkeypatch.chdir(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(ParameterError, match="it contains the input file d/in.wav"):
            check_output_dir("d", overwrite=overwrite, inputs=["d/in.wav"])
        with pytest.raises(ParameterError, match="it contains the input file d/in.wav"):
            with atomic_output_dir("d", overwrite=overwrite, inputs=["d/in.wav"]):
                raise AssertionError("must not get here")
    with pytest.raises(ParameterError, match="it holds in.wav, which synctalk-audio does not"):
        with atomic_output_dir("d"):
            raise AssertionError("must not get here")
    assert snapshot(str(tmp_path)) == before


def test_function_keeps_previous_output_on_interrupt(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(str(out)) as staging:
        write_metadata(staging, {"run": 1})
    before = snapshot(str(out))
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(str(out)) as staging:
            write_metadata(staging, {"run": 2})
            raise KeyboardInterrupt
    assert snapshot(str(out)) == before
    assert os.listdir(tmp_path) == ["out"]


def test_function_refuses_a_second_writer(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(str(out)) as staging:
        with pytest.raises(ParameterError, match=f"another synctalk-audio run is writing {out}"):
            with atomic_output_dir(str(out), overwrite=True):
                raise AssertionError("must not get here")
        assert os.path.isdir(staging)
        write_metadata(staging, {"run": 1})
    with atomic_output_dir(str(out)) as staging:  # the lock is free again
        write_metadata(staging, {"run": 2})
    assert os.listdir(tmp_path) == ["out"]


# ---------------------------------------------------------------------------
# signals, stale staging, concurrent runs


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_while_writing_frames_keeps_previous_output(test_encoder, tmp_path, signame):
    signum = getattr(signal, signame)
    out = tmp_path / "out"
    assert process(test_encoder.onnx, str(out)).returncode == 0
    before = snapshot(str(out))
    child = slow_child(test_encoder.onnx, str(out), "--fps", "30")
    staging = [n for n in os.listdir(tmp_path) if n.startswith(f".out.tmp-{child.pid}-")]
    assert len(staging) == 1, os.listdir(tmp_path)
    child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "nothing was written" in lines[0]
    if signum != signal.SIGINT:
        assert f"by {signame}" in lines[0]
    assert snapshot(str(out)) == before
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_stream_signal_is_handled_like_ctrl_c(test_encoder, tmp_path, signame):
    """As for SIGINT: whole records, the output directory written and marked incomplete."""
    import struct

    signum = getattr(signal, signame)
    pcm = (np.sin(np.arange(24000) * 0.05) * 8000).astype("<i2")
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    header += b"data" + struct.pack("<I", 0xFFFFFFFF)
    out_dir = tmp_path / "live"
    child = subprocess.Popen(
        [sys.executable, "-m", "synctalk_audio.cli", "stream", "--model", test_encoder.onnx]
        + ["--output", str(out_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        bufsize=0,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(header + pcm.tobytes())
    child.stdin.flush()
    record = 4 + 8192 * 4
    first = b""
    while len(first) < record:  # blocks until the first frame is out
        block = child.stdout.read(record - len(first))
        assert block, "the stream command ended before its first frame"
        first += block
    child.send_signal(signum)
    rest, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signum, err.decode()
    blob = first + rest
    assert len(blob) % record == 0, "a record was cut in half"
    count = len(blob) // record
    meta = json.loads((out_dir / "metadata.json").read_text())
    assert meta["complete"] is False and meta["counts"]["frames"] == count
    assert len(os.listdir(out_dir / "frames")) == count
    assert os.listdir(tmp_path) == ["live"]


def test_stale_staging_of_dead_runs_is_removed(test_encoder, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    dead, alive = dead_pid(), os.getpid()
    stale = [
        f".out.tmp-{dead}-abcdefgh",  # a run killed while writing
        f".out.old-{dead}-ijklmnop",  # a run killed while replacing
        ".out.tmp-qrstuvwx",  # versions before the lock
        ".out.old-yz012345",
    ]
    kept = [
        f".out.tmp-{alive}-abcdefgh",  # a live process: never touched
        f".other.tmp-{dead}-abcdefgh",  # another output's
        ".out.tmp-notes",  # not a staging name
    ]
    for name in stale + kept:
        os.makedirs(work / name / "frames")
        (work / name / "frames" / "frame_00000.bin").write_bytes(b"\0" * 8)
    (work / ".out.lock").write_bytes(b"")  # left by a killed run
    done = process(test_encoder.onnx, str(work / "out"))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(work)) == sorted(["out", *kept])


def test_concurrent_runs_one_output_and_a_clear_loser(test_encoder, tmp_path):
    work, ctl = tmp_path / "work", tmp_path / "ctl"
    work.mkdir()
    ctl.mkdir()
    out, go = work / "out", ctl / "go"
    first = slow_child(test_encoder.onnx, str(out), go=str(go))  # holds the lock, mid-write
    try:
        for extra in ([], ["--overwrite"], ["--fps", "30"]):
            second = process(test_encoder.onnx, str(out), *extra)
            refused(second, f"another synctalk-audio run is writing {out}")
        with open(SPEECH, "rb") as stdin:
            second = run("stream", "--model", test_encoder.onnx, "--output", str(out), stdin=stdin)
        refused(second, f"another synctalk-audio run is writing {out}")
    finally:
        go.write_text("")
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert_complete_output(str(out))
    assert os.listdir(work) == ["out"]


def test_rerun_after_interrupted_run_cleans_up(test_encoder, tmp_path, monkeypatch, capsys):
    """cli.main: a SIGKILLed run's leftovers go on the next run; the output is complete."""
    out = tmp_path / "out"
    child = slow_child(test_encoder.onnx, str(out))
    child.kill()
    child.communicate(timeout=120)
    assert any(n.startswith(f".out.tmp-{child.pid}-") for n in os.listdir(tmp_path))
    status = cli.main(
        ["process", "--audio", SPEECH, "--model", test_encoder.onnx, "--output", str(out), "-q"]
    )
    assert status == 0, capsys.readouterr().err
    assert_complete_output(str(out))
    assert os.listdir(tmp_path) == ["out"]


# ---------------------------------------------------------------------------
# a full disk: one line naming what was being written, nothing half-written

FULL_DISK = (
    "(No space left on device); nothing was written: free space there or choose another"
    " --output, then run again"
)


def long_clip(path) -> str:
    """20 s of noise: 502 frame files of 32 KiB, more than the 1 MiB tmpfs holds."""
    import soundfile

    noise = np.random.default_rng(5).standard_normal(16000 * 20).astype(np.float32) * 0.1
    soundfile.write(str(path), noise, 16000)
    return str(path)


def leftovers(folder: str) -> list[str]:
    """Staging directories and lock files under ``folder``: what a run must not leave."""
    found = []
    for top, dirs, files in os.walk(folder):
        found += [os.path.join(top, n) for n in dirs + files if ".tmp-" in n or n.endswith(".lock")]
    return found


@pytest.mark.slow  # starts job worker processes
def test_a_full_disk_names_the_output_and_leaves_nothing(test_encoder, tmp_path, small_tmpfs):
    """It said "[Errno 28] No space left on device", naming no path and no remedy."""
    clip = long_clip(tmp_path / "long.wav")
    out = os.path.join(small_tmpfs, "out")
    done = process(test_encoder.onnx, out, audio=clip)
    refused(done, f"no space left on the device holding {out} {FULL_DISK}", status=1)
    assert os.listdir(small_tmpfs) == []
    # a job: every item fails with that line about its own output; the record is kept
    job = os.path.join(small_tmpfs, "job")
    done = run("process", "--audio", clip, "--audio", SPEECH, "--model", test_encoder.onnx,
               "--output", job, "--workers", "1")  # fmt: skip
    assert done.returncode == 1, done.stderr
    failed = [line for line in done.stderr.splitlines() if ": failed: " in line]
    assert len(failed) == 2, done.stderr
    for line in failed:
        assert f": no space left on the device holding {job}/" in line and line.endswith(FULL_DISK)
    assert leftovers(small_tmpfs) == []
    assert os.path.isfile(os.path.join(job, "synctalk-job.jsonl"))


def test_a_full_disk_while_writing_frames_names_the_output(test_encoder, tmp_path, monkeypatch):
    """The same without a tmpfs: ENOSPC from the 4th frame file on."""
    from synctalk_audio.outputs import sink as files
    from synctalk_audio.pipeline import Pipeline

    real = files.write_frame_file
    count = []

    def write_frame_file(path, frame):
        count.append(path)
        if len(count) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, frame)

    monkeypatch.setattr(files, "write_frame_file", write_frame_file)
    out = tmp_path / "out"
    with Pipeline(test_encoder.onnx) as pipe, pytest.raises(OSError) as err:
        pipe.process_to(SPEECH, str(out))
    assert str(err.value) == f"no space left on the device holding {out} {FULL_DISK}"
    assert err.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_writing_the_job_record_names_it(tmp_path, monkeypatch):
    from synctalk_audio.jobs.record import JobRecord

    record = JobRecord(str(tmp_path))
    real = os.write

    def write(fd, data):
        if fd == record._fd:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    with record.locked():
        monkeypatch.setattr(os, "write", write)
        with pytest.raises(OSError) as err:
            record.append([{"output": "a", "status": "done"}])
        monkeypatch.undo()
    assert str(err.value) == (
        f"no space left on the device holding {tmp_path / 'synctalk-job.jsonl'} (No space left"
        " on device); free space there and run the same command again (finished items are"
        " complete and are kept)"
    )
