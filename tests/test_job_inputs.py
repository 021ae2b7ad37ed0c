"""A job's inputs: input trees with links, files that are not regular, odd names, manifests.

- A directory is searched as ``find -L`` does: a symbolic link back into a
  directory the search is inside (a loop) is skipped, with one line saying
  so, and the search ends; a file with two names in the tree (a link beside
  its target) is an input under each name.
- Only regular files found in a tree are inputs: a FIFO or a device named
  ``x.wav`` is skipped with a notice, never opened; one listed by name in a
  job is refused before any work (a job reads each input twice).
- A file name that is not valid UTF-8 is processed; a manifest may start
  with a byte order mark, is read no further than its size limit, and a NUL
  in a value is reported with its line.

Whatever might hang on a regression runs under a deadline: in a subprocess
with a timeout (its process group is killed), or under ``signal.alarm``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import warnings

import numpy as np
import pytest
from procs import command_bounded, deadline
from tiny_models import make_tiny_encoder

from synctalk_audio.errors import ParameterError
from synctalk_audio.jobs import plan, plan_job, run_job
from synctalk_audio.jobs.plan import RECORD_NAME

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(DATA, "speech_16k_s16_mono.wav")
NOTE = "synctalk-audio process: note: "


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def run_bounded(*args: str, timeout: float = 60, env: dict[str, str] | None = None):
    """``synctalk-audio ARGS`` bounded (tests/procs.py); bytes out (names need not be UTF-8)."""
    return command_bounded(*args, timeout=timeout, env=env, text=False)


def planned(*args, **kwargs) -> tuple[list[str], list[str]]:
    """The keys `plan_job` gives and its notices (warnings without a callback), in 20 s."""
    with deadline(20), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = plan_job(*args, **kwargs)
    return [item.key for item in items], [str(w.message) for w in caught]


def refused(*args, **kwargs) -> str:
    with deadline(20), warnings.catch_warnings(), pytest.raises(ParameterError) as err:
        warnings.simplefilter("ignore")
        plan_job(*args, **kwargs)
    return str(err.value)


def clip(path) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copy(SPEECH, path)
    return str(path)


def device(path, major: int, minor: int, target: str) -> None:
    """A character device node at ``path`` (a link to ``target`` where mknod is not allowed)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    except PermissionError:
        os.symlink(target, path)


# -- item 1: symbolic link loops and aliases --------------------------------------------


@pytest.mark.slow  # starts job worker processes
def test_two_links_to_the_tree_itself_are_skipped_in_one_line(tiny, tmp_path):
    """a.wav, x -> ., y -> .: planned forever before; now one note and one item."""
    tree = tmp_path / "tree"
    clip(tree / "a.wav")
    os.symlink(".", tree / "x")
    os.symlink(".", tree / "y")
    out = tmp_path / "out"
    done = run_bounded("process", "--model", tiny, "--audio", str(tree), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().splitlines() == [
        f"{NOTE}skipped 2 symbolic links under {tree} that lead back to a directory they are in"
        f" (a loop; the files there are taken once): {tree / 'x'} -> {tree}, {tree / 'y'} ->"
        f" {tree}"
    ]
    assert sorted(os.listdir(out)) == ["a", RECORD_NAME]
    done = run_bounded("process", "--model", tiny, "--audio", str(tree), "--output", str(out), "-q")
    assert done.returncode == 0 and done.stderr == b"" and done.stdout == b""


def test_a_link_back_to_an_ancestor_is_a_loop(tmp_path):
    """loop/self -> ../loop gave "…/self/self/…(39 times)/sub/a.wav is listed twice"."""
    loop = tmp_path / "loop"
    clip(loop / "sub" / "a.wav")
    os.symlink("../loop", loop / "self")
    os.symlink("..", loop / "sub" / "up")
    keys, notices = planned(str(tmp_path / "out"), [str(loop)])
    assert keys == ["sub/a"]
    assert notices == [
        f"skipped 2 symbolic links under {loop} that lead back to a directory they are in (a"
        f" loop; the files there are taken once): {loop / 'self'} -> {loop},"
        f" {loop / 'sub' / 'up'} -> {loop}"
    ]


@pytest.mark.slow  # starts job worker processes
def test_an_alias_file_gets_its_own_output(tiny, tmp_path):
    """alias.wav -> clip00.wav refused the whole job; each name now gets its output."""
    tree = tmp_path / "dang"
    clip(tree / "clip00.wav")
    os.symlink("clip00.wav", tree / "alias.wav")
    out = tmp_path / "out"
    keys, notices = planned(str(out), [str(tree)])
    assert keys == ["alias", "clip00"]
    assert notices == [
        f"1 file under {tree} has two names (symbolic links): {tree / 'alias.wav'} ="
        f" {tree / 'clip00.wav'}; each name gets its own output, as the tree names it"
    ]
    done = run_bounded("process", "--model", tiny, "--audio", str(tree), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode() == f"{NOTE}{notices[0]}\n"
    alias, original = (np.load(out / name / "aud_ave.npy") for name in ("alias", "clip00"))
    assert alias.tobytes() == original.tobytes()


def test_a_linked_directory_is_searched_under_each_name(tmp_path):
    """Not a loop: a second name of a directory is mirrored, as find -L lists it."""
    tree = tmp_path / "tree"
    clip(tree / "v3" / "a.wav")
    os.symlink("v3", tree / "latest")
    keys, notices = planned(str(tmp_path / "out"), [str(tree)])
    assert keys == ["latest/a", "v3/a"]
    assert len(notices) == 1 and notices[0].startswith(f"1 file under {tree} has two names")


def test_listed_twice_names_both_listings(tmp_path):
    tree = tmp_path / "dang"
    first = clip(tree / "clip00.wav")
    os.symlink("clip00.wav", tree / "alias.wav")
    alias = str(tree / "alias.wav")
    out = str(tmp_path / "out")
    assert refused(out, [first, alias]) == (
        f"input {first} is listed twice, as {first} (--audio) and as {alias} (--audio, the same"
        " file); list each input once"
    )
    assert refused(out, [tree, alias]) == (
        f"input {alias} is listed twice (under {tree} and --audio); list each input once"
    )
    manifest = tmp_path / "m.txt"
    manifest.write_text("dang/clip00.wav\ndang/alias.wav\n")
    assert refused(out, manifest=manifest) == (
        f"input {first} is listed twice, as {first} (manifest line 1) and as {alias} (manifest"
        " line 2, the same file); list each input once"
    )


# -- item 2: files that are not regular ---------------------------------------------------


@pytest.fixture
def odd_tree(tmp_path):
    """a.wav, a FIFO b.wav, z.wav = /dev/zero, u.wav = /dev/urandom, a broken link, a FIFO notes."""
    tree = tmp_path / "odd"
    clip(tree / "a.wav")
    os.mkfifo(tree / "b.wav")
    os.mkfifo(tree / "notes")  # not an audio name: ignored as any other file
    device(tree / "z.wav", 1, 5, "/dev/zero")
    device(tree / "u.wav", 1, 9, "/dev/urandom")
    os.symlink("gone.wav", tree / "broken.wav")
    return tree


def test_a_tree_walk_takes_regular_files_only(odd_tree, tmp_path):
    keys, notices = planned(str(tmp_path / "out"), [str(odd_tree)])
    assert keys == ["a"]
    kind = "a character device"  # a node or, without mknod, a link to one
    assert notices == [
        f"skipped 3 audio names under {odd_tree} that are not a regular file (a directory search"
        " takes regular files only; give a FIFO alone, --audio PATH, to read it as a stream):"
        f" {odd_tree / 'b.wav'} (a FIFO), {odd_tree / 'u.wav'} ({kind}),"
        f" {odd_tree / 'z.wav'} ({kind})",
        f"skipped 1 symbolic link under {odd_tree} that cannot be followed:"
        f" {odd_tree / 'broken.wav'} -> gone.wav (No such file or directory)",
    ]


@pytest.mark.slow  # starts job worker processes
def test_a_job_over_fifos_and_devices_processes_the_rest(tiny, odd_tree, tmp_path):
    """A FIFO b.wav blocked the planner; /dev/zero as z.wav ran at 200 % CPU forever."""
    out = tmp_path / "out"
    done = run_bounded("process", "--model", tiny, "--audio", str(odd_tree), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith(f"job: 1 items -> {out}: 1 written,")
    assert len(done.stderr.decode().splitlines()) == 2
    assert sorted(os.listdir(out)) == ["a", RECORD_NAME]


def test_a_tree_of_nothing_but_fifos_says_what_was_skipped(tmp_path):
    tree = tmp_path / "fifos"
    tree.mkdir()
    os.mkfifo(tree / "b.wav")
    assert refused(str(tmp_path / "out"), [tree]) == (
        f"no audio files under {tree} (looked for {', '.join(plan.AUDIO_EXTENSIONS)}, in every"
        " subdirectory); 1 entry was skipped (loops, files that are not regular, broken links)"
    )


def test_a_stream_listed_in_a_job_is_refused_before_any_work(tmp_path):
    fifo = str(tmp_path / "b.wav")
    os.mkfifo(fifo)
    a = clip(tmp_path / "a.wav")
    out = str(tmp_path / "out")
    assert refused(out, [a, fifo]) == (
        f"input {fifo} is a FIFO, not a regular file: a job reads each input twice (its SHA-256"
        " for the record, then its audio) and cannot resume a stream; process it on its own"
        f" (--audio {fifo} --output DIR) or save it to a file first"
    )
    manifest = tmp_path / "m.txt"
    manifest.write_text("a.wav\nb.wav\n")
    assert refused(out, manifest=manifest) == (
        f"manifest {manifest}: 1 input(s) are not files, line 2: b.wav (a FIFO, not a regular"
        " file); fix those lines (relative paths are relative to the manifest's directory)"
    )
    assert not os.path.exists(out)


# -- item 7: names and manifests ----------------------------------------------------------

ODD_NAME = os.fsdecode(b"ab\xff\xfe.wav")  # not UTF-8: held as surrogates


@pytest.mark.slow  # starts job worker processes
def test_a_name_that_is_not_utf8_is_processed(tiny, tmp_path):
    path = clip(tmp_path / ODD_NAME)
    single = tmp_path / "single"
    # PYTHONIOENCODING=utf-8 makes stdout strict, as in most UTF-8 locales.
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = run_bounded("process", "--model", tiny, "--audio", path, "--output", str(single),
                       env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(os.fsencode(path) + b": 2.00 s -> ")
    meta = json.loads((single / "metadata.json").read_text())
    assert meta["input"]["path"] == path
    tree = tmp_path / "tree"
    clip(tree / ODD_NAME)
    clip(tree / "ok.wav")
    out = tmp_path / "out"
    for written, unchanged in ((2, 0), (0, 2)):  # the rerun finds both finished
        done = run_bounded("process", "--model", tiny, "--audio", str(tree), "--output",
                           str(out), env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"{written} written, {unchanged} unchanged (skipped), 0 failed" in (
            done.stdout.decode()
        )
    assert os.fsencode(ODD_NAME[:-4]) in [os.fsencode(name) for name in os.listdir(out)]
    assert (out / ODD_NAME[:-4] / "aud_ave.npy").read_bytes() == (
        single / "aud_ave.npy"
    ).read_bytes()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("m.txt", "a.wav\n"),
        ("m.csv", "input,output\na.wav,x\n"),
        ("m.jsonl", '{"input": "a.wav", "output": "x"}\n'),
    ],
)
def test_a_manifest_with_a_byte_order_mark_is_read(tmp_path, name, text):
    clip(tmp_path / "a.wav")
    manifest = tmp_path / name
    manifest.write_bytes(b"\xef\xbb\xbf" + text.encode())
    keys, notices = planned(str(tmp_path / "out"), manifest=manifest)
    assert keys == (["a"] if name == "m.txt" else ["x"]) and notices == []


@pytest.mark.parametrize(
    ("name", "text", "key"),
    [
        ("m.csv", "input,output\na.wav,x\na.wav,y\x00z\n", "output"),
        ("n.jsonl", '{"input": "a.wav"}\n\n{"input": "b.wav", "output": "y\\u0000z"}\n', "output"),
        ("m.txt", "# inputs\na\x00.wav\n", "input"),
    ],
)
def test_a_nul_in_a_manifest_value_names_its_line(tmp_path, name, text, key):
    manifest = tmp_path / name
    manifest.write_text(text)
    line = {"m.csv": 3, "n.jsonl": 3, "m.txt": 2}[name]
    assert refused(str(tmp_path / "out"), manifest=manifest) == (
        f"manifest {manifest} line {line}: the {key} value holds a NUL character (\\0), which"
        " no path can hold; fix that line"
    )


def test_a_manifest_is_read_no_further_than_its_limit(tiny, tmp_path, monkeypatch):
    """--manifest /dev/zero grew to 1.7 GB and ended out of memory."""
    out = tmp_path / "out"
    done = run_bounded("process", "--model", tiny, "--manifest", "/dev/zero", "--output", str(out))
    assert done.returncode == 2
    assert done.stderr.decode() == (
        "synctalk-audio process: error: manifest /dev/zero is longer than 64 MiB, the most one"
        " manifest may hold; split it into smaller manifests and run one job on each, or give"
        " the directories holding the inputs with --audio\n"
    )
    assert not out.exists()
    monkeypatch.setattr(plan, "MAX_MANIFEST_BYTES", 1 << 20)
    manifest = tmp_path / "m.txt"
    manifest.write_text("a.wav\n" * ((1 << 20) // 6 + 1))
    assert refused(str(tmp_path / "out"), manifest=manifest).startswith(
        f"manifest {manifest} is longer than 1 MiB, the most one manifest may hold;"
    )


def test_a_manifest_that_is_not_utf8_names_its_line(tmp_path):
    manifest = tmp_path / "m.txt"
    manifest.write_bytes(b"a.wav\nb\xff.wav\n")
    assert refused(str(tmp_path / "out"), manifest=manifest) == (
        f"manifest {manifest} is not UTF-8 text (line 2); save it as UTF-8"
    )


def test_notices_are_warnings_without_a_callback(tmp_path):
    tree = tmp_path / "tree"
    clip(tree / "a.wav")
    os.symlink("../tree", tree / "x")
    with deadline(20), pytest.warns(UserWarning, match="skipped 1 symbolic link under"):
        items = plan_job(str(tmp_path / "out"), [str(tree)])
    assert [item.key for item in items] == ["a"]


@pytest.mark.slow  # starts job worker processes
def test_run_job_passes_notices_on(tiny, tmp_path):
    tree = tmp_path / "tree"
    clip(tree / "a.wav")
    os.symlink("../tree", tree / "x")
    notices: list[str] = []
    with deadline(120):
        summary = run_job(tmp_path / "out", [tree], model=tiny, workers=1, notice=notices.append)
    assert [item.key for item in summary.done] == ["a"]
    assert len(notices) == 1 and f"{tree / 'x'} -> {tree}" in notices[0]
