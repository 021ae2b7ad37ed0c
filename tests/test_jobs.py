"""Jobs over many inputs: layout, the job record and resume, the local engine, bad input.

Outputs of a job are compared byte for byte with single-file runs of the same
settings (one machine; the project's own promise), except the timings and the
encoder's thread count in metadata.json. Kill tests run the command in a
subprocess, kill it once the record shows finished items, and rerun it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from procs import children, command, running, states
from tiny_models import make_tiny_encoder

from synctalk_audio.errors import ParameterError
from synctalk_audio.jobs import plan_job, run_job, worker_sizing
from synctalk_audio.jobs.local import LocalEngine, WorkerDied
from synctalk_audio.jobs.plan import RECORD_NAME
from synctalk_audio.jobs.run import JobProgress
from synctalk_audio.pipeline import Pipeline

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture
def clips(tmp_path):
    """clips/a/x.flac, clips/a/b/y.wav, clips/z.mp3 and a text file that is not audio."""
    root = tmp_path / "clips"
    (root / "a" / "b").mkdir(parents=True)
    shutil.copy(os.path.join(DATA, "speech_16k.flac"), root / "a" / "x.flac")
    shutil.copy(os.path.join(DATA, "speech_44k1_stereo_s24.wav"), root / "a" / "b" / "y.wav")
    shutil.copy(os.path.join(DATA, "speech_24k.mp3"), root / "z.mp3")
    (root / "notes.txt").write_text("not audio")
    return root


def files_of(folder) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (metadata.json without timings/threads)."""
    found = {}
    for top, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(top, name)
            with open(path, "rb") as f:
                data = f.read()
            if name == "metadata.json":
                meta = json.loads(data)
                meta.pop("timings")
                meta["model"].pop("threads")
                data = json.dumps(meta, sort_keys=True).encode()
            found[os.path.relpath(path, folder)] = data
    return found


def record_of(out) -> dict[str, dict]:
    entries = {}
    with open(os.path.join(out, RECORD_NAME), encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            entries[entry["output"]] = entry
    return entries


# -- item 1: many inputs, one output each ---------------------------------------------


@pytest.mark.slow
def test_a_directory_job_mirrors_the_tree_and_equals_single_file_runs(tiny, clips, tmp_path):
    out = tmp_path / "out"
    done = command("process", "--audio", str(clips), "--model", tiny, "--output", str(out),
                   "--workers", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["a", RECORD_NAME, "z"]
    assert sorted(os.listdir(out / "a")) == ["b", "x"]
    for rel, source in (("a/x", "a/x.flac"), ("a/b/y", "a/b/y.wav"), ("z", "z.mp3")):
        single = tmp_path / "single" / rel
        single.parent.mkdir(parents=True, exist_ok=True)
        one = command("process", "--audio", str(clips / source), "--model", tiny,
                      "--output", str(single), "-q")  # fmt: skip
        assert one.returncode == 0, one.stderr
        assert files_of(out / rel) == files_of(single), rel
    assert done.stdout.startswith(f"job: 3 items -> {out}: 3 written, 0 unchanged (skipped),")
    assert " h of audio per minute (2 worker(s) x 1 encoder thread(s), engine local)" in (
        done.stdout
    )


def test_several_audio_files_and_the_single_file_layout(tiny, tmp_path):
    out = tmp_path / "out"
    first, second = os.path.join(DATA, "speech_16k.flac"), os.path.join(DATA, "speech_8k_u8.wav")
    done = command("process", "--audio", first, "--audio", second, "--model", tiny,
                   "--output", str(out), "--workers", "1", "-q")  # fmt: skip
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert sorted(os.listdir(out)) == sorted([RECORD_NAME, "speech_16k", "speech_8k_u8"])
    # One --audio file is the original tool: the output directory itself, no record.
    single = tmp_path / "single"
    done = command("process", "--audio", first, "--model", tiny, "--output", str(single))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(single)) == ["aud_ave.npy", "frames", "metadata.json"]
    assert files_of(single) == files_of(out / "speech_16k")


@pytest.mark.parametrize("kind", ["plain", "csv", "jsonl"])
def test_manifests(kind, tiny, clips, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    rows = [("../clips/a/x.flac", "speaker1/x"), (str(clips / "z.mp3"), None)]
    if kind == "plain":
        text = "# inputs\n\n" + "\n".join(path for path, _ in rows) + "\n"
        expected = ["a/x", "z"]  # mirrored under the inputs' common directory
    elif kind == "csv":
        text = "input,output\n" + "".join(f"{p},{o or ''}\n" for p, o in rows)
        expected = ["speaker1/x", "z"]
    else:
        text = "".join(
            json.dumps({"input": p, **({"output": o} if o else {})}) + "\n" for p, o in rows
        )
        expected = ["speaker1/x", "z"]
    manifest = lists / f"m.{'txt' if kind == 'plain' else kind}"
    manifest.write_text(text)
    out = tmp_path / "out"
    summary = run_job(out, manifest=manifest, model=tiny, workers=1)
    assert summary.ok and sorted(i.key for i in summary.done) == expected
    for key in expected:
        assert (out / key / "aud_ave.npy").is_file()


# getfixturevalue hides wenet_model from tests/conftest.py: the case carries `model` itself.
@pytest.mark.parametrize(
    "mode", ["ave", pytest.param("wenet", marks=[pytest.mark.slow, pytest.mark.model])]
)
def test_each_mode_writes_what_a_single_run_writes(mode, tiny, clips, tmp_path, request):
    model = request.getfixturevalue("wenet_model") if mode == "wenet" else tiny
    out = tmp_path / "out"
    summary = run_job(out, [clips / "a"], model=model, mode=mode, half_window=4 if mode ==
                      "wenet" else 8, threads=1, workers=1)  # fmt: skip
    assert summary.ok and len(summary.done) == 2
    with Pipeline(model, mode=mode, half_window=4 if mode == "wenet" else 8, threads=1) as pipe:
        pipe.process_to(str(clips / "a" / "x.flac"), str(tmp_path / "single"))
    assert files_of(out / "x") == files_of(tmp_path / "single")


# -- item 2: the record, resume, --force, failures -------------------------------------


@pytest.mark.slow
def test_record_and_rerun_skips_unchanged_items(tiny, clips, tmp_path):
    out = tmp_path / "out"
    (clips / "bad.wav").write_bytes(b"RIFF not really")
    first = run_job(out, [clips], model=tiny, workers=2)
    assert not first.ok and [item.key for item, _ in first.failed] == ["bad"]
    assert first.failed[0][1].startswith(f"could not decode {clips / 'bad.wav'}")
    entries = record_of(out)
    assert set(entries) == {"a/x", "a/b/y", "z", "bad"}
    x = entries["a/x"]
    assert x["status"] == "done" and x["error"] is None
    assert x["input"] == str(clips / "a" / "x.flac")
    assert x["size"] == os.path.getsize(clips / "a" / "x.flac")
    assert x["sha256"] == "80d460cf12e17682881f84a06cc9906eaeed133f6cd1e3aa0b7739e926496309"
    assert x["settings"]["mode"] == "ave" and x["model_sha256"]
    assert x["duration_s"] == 2.0 and x["frames"] == 49
    assert {"started", "finished", "wall_s", "run_started"} <= set(x["timings"])
    assert entries["bad"]["status"] == "failed" and "could not decode" in entries["bad"]["error"]
    assert not (out / "bad").exists()
    stamp = {k: os.stat(out / k / "metadata.json").st_mtime_ns for k in ("a/x", "a/b/y", "z")}

    # Unchanged: skipped (the failed one is tried again and fails again).
    second = run_job(out, [clips], model=tiny, workers=2)
    assert second.skipped == 3 and second.done == [] and len(second.failed) == 1
    assert {k: os.stat(out / k / "metadata.json").st_mtime_ns for k in stamp} == stamp

    # A changed input, a deleted output and a fixed file are redone; the rest skipped.
    shutil.copy(os.path.join(DATA, "speech_16k_s16_mono.wav"), clips / "z.mp3")
    shutil.rmtree(out / "a" / "b" / "y")
    shutil.copy(os.path.join(DATA, "speech_8k_u8.wav"), clips / "bad.wav")
    third = run_job(out, [clips], model=tiny, workers=2)
    assert third.ok and third.skipped == 1
    assert sorted(i.key for i in third.done) == ["a/b/y", "bad", "z"]
    assert os.stat(out / "a/x/metadata.json").st_mtime_ns == stamp["a/x"]

    # Other settings or --force: everything is redone.
    assert len(run_job(out, [clips], model=tiny, pad_mode="reflect").done) == 4
    assert len(run_job(out, [clips], model=tiny, pad_mode="reflect").done) == 0
    assert len(run_job(out, [clips], model=tiny, pad_mode="reflect", force=True).done) == 4
    assert len(record_of(out)) == 4  # compacted: one line per item


def test_command_exit_status_and_failure_lines(tiny, clips, tmp_path):
    (clips / "bad.wav").write_bytes(b"")
    out = tmp_path / "out"
    done = command("process", "--audio", str(clips), "--model", tiny, "--output", str(out))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"synctalk-audio process: failed: {clips / 'bad.wav'}: ")
    assert lines[1] == (
        f"synctalk-audio process: 1 of 4 items failed; their errors are in"
        f" {out / RECORD_NAME}; fix them and run the same command again (finished items are"
        " skipped)"
    )
    assert len(lines) == 2 and "Traceback" not in done.stderr
    assert "3 written, 0 unchanged (skipped), 1 failed" in done.stdout


def _many(tmp_path, count: int):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(count):
        shutil.copy(os.path.join(DATA, "speech_16k_s16_mono.wav"), folder / f"c{i:03d}.wav")
    return folder


def _wait_for_done(record: str, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if os.path.exists(record):
            with open(record, encoding="utf-8") as f:
                if sum('"status": "done"' in line for line in f) >= count:
                    return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    raise AssertionError("the job did not get going")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_killed_job_resumes_without_redoing_finished_items(how, tiny, tmp_path):
    folder = _many(tmp_path, 60)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "synctalk_audio.cli", "process", "--audio", str(folder),
            "--model", tiny, "--output", str(out), "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)  # fmt: skip
    _wait_for_done(str(out / RECORD_NAME), 5, proc)
    workers = children(proc.pid)
    if how == "SIGKILL":
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers follow it
    else:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole group
    _, stderr = proc.communicate(timeout=60)
    if how == "SIGINT":
        assert proc.returncode == 130
        assert stderr.splitlines()[-1] == (
            "synctalk-audio: interrupted; every finished item is complete and recorded, the"
            " ones in progress were not written; run the same command again to finish the job"
        )
        assert "Traceback" not in stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    # The workers clean up after the driver, then exit.
    deadline = time.monotonic() + 120
    while any(running(pid) for pid in workers):
        assert time.monotonic() < deadline, f"workers still running: {states(workers)}"
        time.sleep(0.05)
    staging = [n for n in os.listdir(out) if n.startswith(".") and ".tmp-" in n]
    assert not staging, staging
    finished = {}
    for name in os.listdir(out):
        if name == RECORD_NAME or name.startswith("."):
            continue
        meta = out / name / "metadata.json"
        assert meta.is_file(), f"{name} is half-written"  # every output there is whole
        finished[name] = os.stat(meta).st_mtime_ns
    assert 5 <= len(finished) < 60

    done = command(*args[3:])
    assert done.returncode == 0, done.stderr
    assert f"{60 - len(finished)} written, {len(finished)} unchanged (skipped)" in done.stdout
    for name, stamp in finished.items():
        assert os.stat(out / name / "metadata.json").st_mtime_ns == stamp, name
    assert sorted(os.listdir(out)) == sorted([RECORD_NAME, *(f"c{i:03d}" for i in range(60))])
    assert all(e["status"] == "done" for e in record_of(out).values())


def test_a_second_job_on_the_same_output_is_refused(tiny, clips, tmp_path):
    from synctalk_audio.jobs.record import JobRecord

    out = tmp_path / "out"
    out.mkdir()
    with JobRecord(str(out)).locked():
        with pytest.raises(ParameterError) as err:
            run_job(out, [clips], model=tiny)
    assert str(err.value) == (
        f"another synctalk-audio run is writing {out / RECORD_NAME}; wait for it to finish"
        " or choose another --output"
    )


# -- item 3: workers, progress, summary ------------------------------------------------


def test_worker_sizing():
    assert worker_sizing(1000, cpus=2) == (2, 1)  # many clips: a one-thread worker per core
    assert worker_sizing(1, cpus=2) == (1, 2)  # one long file: one worker, both cores
    assert worker_sizing(3, cpus=8) == (3, 2)
    assert worker_sizing(1000, cpus=2, workers=1) == (1, 2)
    assert worker_sizing(1000, cpus=2, workers=4, threads=3) == (4, 3)


def test_progress_reports_items_audio_and_eta(tiny, clips, tmp_path):
    seen: list[JobProgress] = []
    summary = run_job(tmp_path / "out", [clips], model=tiny, workers=1, progress=seen.append)
    assert [p.done for p in seen] == [0, 1, 2, 3] and {p.total for p in seen} == {3}
    total = 2.0 + 52920 / 44100 + 43200 / 24000
    assert seen[0].audio_total_s == pytest.approx(total)
    assert seen[-1].audio_done_s == pytest.approx(total) and seen[-1].eta_s == 0.0
    assert seen[-1].real_time_factor == pytest.approx(seen[-1].elapsed_s / total)
    assert summary.audio_s == pytest.approx(total)
    assert summary.audio_hours_per_minute == pytest.approx(total / 3600 / (summary.wall_s / 60))
    half = JobProgress(done=1, failed=0, total=3, audio_done_s=10, audio_total_s=30, elapsed_s=2)
    assert half.eta_s == pytest.approx(4.0) and half.real_time_factor == pytest.approx(0.2)


def test_the_progress_bar_line():
    from synctalk_audio.commands.process import JobBar

    p = JobProgress(done=6, failed=1, total=12, audio_done_s=1800, audio_total_s=3600,
                    elapsed_s=90)  # fmt: skip
    import io
    from contextlib import redirect_stderr

    buffer = io.StringIO()
    with redirect_stderr(buffer):
        JobBar()(p)
    assert buffer.getvalue() == (
        "\rjob [############............] 6/12 items, 0.50/1.00 h audio, RTF 0.050,"
        " ETA 1m30s, 1 failed "
    )


# -- the local engine -----------------------------------------------------------------


def _square_factory():
    return _square


def _square(item: int) -> int:
    if item == 13:
        os._exit(3)  # a crash in native code, say
    if item == 17:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def _failing_factory():
    raise ValueError("no model here")


@pytest.mark.slow
def test_local_engine_reports_each_item_once_and_survives_dead_workers():
    got: dict[int, object] = {}

    def on_result(index: int, result: object) -> None:
        assert index not in got
        got[index] = result

    items = list(range(20))
    LocalEngine(workers=2).run(items, _square_factory, on_result)
    assert sorted(got) == items
    for i in items:
        if i in (13, 17):
            assert isinstance(got[i], WorkerDied)
        else:
            assert got[i] == i * i
    assert str(got[13]) == "the worker process died (exit status 3) while processing it"
    assert str(got[17]) == "the worker process died (killed by SIGKILL) while processing it"


@pytest.mark.slow
def test_local_engine_stops_its_workers_when_the_driver_stops():
    import multiprocessing

    def stop(index: int, result: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        LocalEngine(workers=2).run(list(range(10)), _square_factory, stop)
    assert multiprocessing.active_children() == []
    with pytest.raises(RuntimeError, match="ValueError: no model here"):
        LocalEngine(workers=2).run([1, 2], _failing_factory, lambda i, r: None)
    assert multiprocessing.active_children() == []
    with pytest.raises(ParameterError, match="workers must be a positive integer, got 0"):
        LocalEngine(workers=0)


# -- item 5: bad input, each refused before any work ------------------------------------


def test_bad_inputs_are_refused_before_any_work(clips, tmp_path, monkeypatch):
    out = str(tmp_path / "out")

    def refused(*args, **kwargs) -> str:
        with pytest.raises(ParameterError) as err:
            plan_job(*args, **kwargs)
        return str(err.value)

    assert refused(out, [str(tmp_path / "nope.wav")]) == f"input not found: {tmp_path / 'nope.wav'}"
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    assert refused(out, [empty]).startswith(f"no audio files under {empty} (looked for .wav,")

    # unreadable directories (the tests run as root, who reads anything: simulate it)
    real_scandir = os.scandir

    def scandir(path=".", *a, **k):
        if os.fspath(path) == str(clips / "a" / "b"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path, *a, **k)

    monkeypatch.setattr(os, "scandir", scandir)
    assert refused(out, [clips]) == (
        f"cannot read directory {clips / 'a' / 'b'}: Permission denied; fix its permissions"
        " or leave it out"
    )
    monkeypatch.undo()

    # duplicates
    x = str(clips / "a" / "x.flac")
    assert (
        refused(out, [x, x])
        == f"input {x} is listed twice (--audio and --audio); list each input once"
    )
    assert refused(out, [clips, x]) == (
        f"input {x} is listed twice (under {clips} and --audio); list each input once"
    )
    # two inputs, one output
    shutil.copy(os.path.join(DATA, "speech_8k_u8.wav"), clips / "z.wav")
    assert refused(out, [clips]) == (
        f"{clips / 'z.mp3'} and {clips / 'z.wav'} would both write {out}/z; give them distinct"
        " names, or distinct outputs in a manifest's output column"
    )
    os.remove(clips / "z.wav")
    # nested outputs
    shutil.copy(os.path.join(DATA, "speech_8k_u8.wav"), clips / "a.wav")
    assert refused(out, [clips]) == (
        f"the output of {clips / 'a' / 'b' / 'y.wav'} ({out}/a/b/y) would be inside the output"
        f" of {clips / 'a.wav'} ({out}/a); give them outputs that do not nest, e.g. in a"
        " manifest's output column"
    )
    os.remove(clips / "a.wav")
    # the output inside the input tree, an input inside the output
    inside = str(clips / "a" / "features")
    assert refused(inside, [clips]) == (
        f"--output {inside} is inside the input directory {clips}; choose an output directory"
        " outside it (a rerun would find the outputs as inputs)"
    )
    assert refused(str(clips / "a"), [x]) == (
        f"input {x} is inside --output {clips / 'a'}; keep inputs and outputs apart (choose"
        " another --output)"
    )


def _manifest(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_bad_manifests_are_refused_before_any_work(clips, tmp_path):
    out = str(tmp_path / "out")
    x = str(clips / "a" / "x.flac")

    def refused(manifest: str) -> str:
        with pytest.raises(ParameterError) as err:
            plan_job(out, manifest=manifest)
        return str(err.value)

    m = _manifest(tmp_path, "m.txt", f"{x}\nmissing.wav\n{clips}\n")
    assert refused(m) == (
        f"manifest {m}: 2 input(s) are not files, line 2: missing.wav (not found) and 1 more;"
        " fix those lines (relative paths are relative to the manifest's directory)"
    )
    m = _manifest(tmp_path, "dup.txt", f"{x}\n../{os.path.relpath(x, tmp_path.parent)}\n")
    assert refused(m) == (
        f"input {x} is listed twice (manifest line 1 and manifest line 2); list each input once"
    )
    m = _manifest(tmp_path, "m.csv", "path,out\nx.wav,y\n")
    assert refused(m) == (
        f"manifest {m}: its first line must name the columns, with an 'input' column (and"
        " optionally 'output'); got ['path', 'out']"
    )
    m = _manifest(tmp_path, "m.jsonl", '{"input": "a.wav"}\n{input: 1}\n')
    assert refused(m).startswith(f"manifest {m} line 2: not JSON (")
    m = _manifest(tmp_path, "e.txt", "# nothing\n\n")
    assert refused(m) == f"manifest {m} lists no inputs"
    assert refused(str(tmp_path / "none.txt")) == f"manifest not found: {tmp_path / 'none.txt'}"

    # outputs that would leave --output
    for value, why in (
        ("../elsewhere", f"is not inside --output {out}; give a path relative to --output,"
                         " without '..'"),
        ("a/../../elsewhere", f"is not inside --output {out}; give a path relative to"
                              " --output, without '..'"),
        (".", f"is not inside --output {out}; give a path relative to --output, without '..'"),
        ("/tmp/x", "is an absolute path; give a path relative to --output"),
    ):  # fmt: skip
        m = _manifest(tmp_path, "o.csv", f"input,output\n{x},{value}\n")
        assert refused(m) == f"manifest {m} manifest line 2: output {value!r} {why}"
    outside = tmp_path / "outside"
    outside.mkdir()
    os.makedirs(out)
    os.symlink(outside, os.path.join(out, "link"))
    m = _manifest(tmp_path, "o.jsonl", json.dumps({"input": x, "output": "link/x"}) + "\n")
    assert refused(m) == (
        f"output link/x of {x} leads to {outside / 'x'}, outside --output {out} (through a"
        " symbolic link); remove the link or choose another output"
    )


@pytest.mark.slow
def test_command_bad_input_is_one_line_and_writes_nothing(tiny, clips, tmp_path):
    out = tmp_path / "out"
    m = _manifest(tmp_path, "m.txt", "missing.wav\n")
    for args, message in (
        (["--manifest", m], f"manifest {m}: 1 input(s) are not files, line 1: missing.wav"
                            " (not found); fix those lines (relative paths are relative to the"
                            " manifest's directory)"),
        (["--audio", str(clips), "--audio", str(clips / "z.mp3")],
         f"input {clips / 'z.mp3'} is listed twice (under {clips} and --audio); list each input"
         " once"),
        (["--audio", str(clips), "--workers", "0"], "--workers must be a positive integer, got 0"),
        ([], "no input: give --audio FILE (repeat it, or give a directory, for a job) or"
             " --manifest FILE"),
        (["--audio", str(clips / "z.mp3"), "--engine", "ray", "--workers", "2"],
         "--engine and --workers only apply to jobs (several --audio, a directory or"
         " --manifest); one file is processed here: leave them out"),
        (["--audio", str(clips / "z.mp3"), "--force"],
         "--force only applies to jobs (several --audio, a directory or --manifest); one file is"
         " processed here: leave it out"),
    ):  # fmt: skip
        done = command("process", *args, "--model", tiny, "--output", str(out))
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"synctalk-audio process: error: {message}\n"
        assert not out.exists()
    done = command("process", "--audio", str(clips), "--model", str(tmp_path / "no.onnx"),
                   "--output", str(out))  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith(
        f"synctalk-audio process: error: encoder model not found: {tmp_path / 'no.onnx'}."
    )
    assert not out.exists()


def test_run_job_is_exposed_at_the_top():
    import synctalk_audio

    assert synctalk_audio.run_job is run_job
    assert np.__name__  # numpy imported for the module's helpers


def _rewrite_metadata(path, change) -> None:
    with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    change(meta)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(meta, f)


def test_an_output_in_place_is_kept_by_its_metadata_whatever_the_record_says(tiny, clips, tmp_path):
    """Resume adopts an output whose metadata.json proves its input, model and settings."""
    out = tmp_path / "out"
    assert run_job(out, [clips], model=tiny, workers=1).ok
    record = out / RECORD_NAME
    entries = record_of(out)
    meta_z = out / "z" / "metadata.json"
    stamp = os.stat(meta_z).st_mtime_ns
    facts = json.loads(meta_z.read_text())["input"]
    source = clips / "z.mp3"
    assert (facts["size"], facts["mtime_ns"]) == (source.stat().st_size, source.stat().st_mtime_ns)
    assert facts["sha256"] == entries["z"]["sha256"]

    # What a killed run leaves: z's last line "pending", or no line at all.
    pending = {**entries["z"], "status": "pending", "sha256": None}
    with open(record, "a", encoding="utf-8") as f:
        f.write(json.dumps(pending) + "\n")
    again = run_job(out, [clips], model=tiny, workers=1)
    assert again.skipped == 3 and again.done == []
    assert os.stat(meta_z).st_mtime_ns == stamp
    assert record_of(out)["z"]["status"] == "done"
    assert record_of(out)["z"]["sha256"] == entries["z"]["sha256"]
    assert "adopted" in record_of(out)["z"]["timings"]
    record.unlink()
    again = run_job(out, [clips], model=tiny, workers=1)
    assert again.skipped == 3 and again.done == []
    assert os.stat(meta_z).st_mtime_ns == stamp
    assert sorted(record_of(out)) == ["a/b/y", "a/x", "z"]
    assert all(e["status"] == "done" for e in record_of(out).values())

    # The input touched (same bytes, another mtime): redone.
    os.utime(source, ns=(facts["mtime_ns"], facts["mtime_ns"] + 10**9))
    assert [i.key for i in run_job(out, [clips], model=tiny, workers=1).done] == ["z"]
    # Other bytes of the same size, the mtime put back: the SHA-256 tells, redone.
    meta = json.loads(meta_z.read_text())["input"]
    data = bytearray(source.read_bytes())
    data[-1] ^= 1
    source.write_bytes(bytes(data))
    os.utime(source, ns=(meta["mtime_ns"], meta["mtime_ns"]))
    assert [i.key for i in run_job(out, [clips], model=tiny, workers=1).done] == ["z"]

    # An output without the facts (an earlier version's): kept only on the record's word.
    def drop_facts(meta: dict) -> None:
        for fact in ("size", "mtime_ns", "sha256"):
            del meta["input"][fact]

    meta_x = out / "a" / "x" / "metadata.json"
    _rewrite_metadata(meta_x, drop_facts)
    stamp_x = os.stat(meta_x).st_mtime_ns
    assert run_job(out, [clips], model=tiny, workers=1).done == []
    assert os.stat(meta_x).st_mtime_ns == stamp_x
    record.unlink()
    assert [i.key for i in run_job(out, [clips], model=tiny, workers=1).done] == ["a/x"]

    # Other settings in metadata.json: not this run's output, redone.
    _rewrite_metadata(meta_z, lambda meta: meta["settings"].update(pad_mode="reflect"))
    assert [i.key for i in run_job(out, [clips], model=tiny, workers=1).done] == ["z"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_model_that_does_not_load_stops_the_job_with_one_error(workers, clips, tmp_path):
    """The driver does not open the model; the first worker that cannot stops the job."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an ONNX model")
    out = tmp_path / "out"
    done = command("process", "--audio", str(clips), "--model", str(bad), "--output", str(out),
                   "--workers", workers)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        "synctalk-audio process: error: a worker of the job could not start (ModelError: "
    )
    assert lines[0].endswith(
        "); the job stopped: fix that and run the same command again (finished items are kept)"
    )
    assert str(bad) in lines[0]
    assert sorted(os.listdir(out)) == [RECORD_NAME]  # no output, no staging directory left
    assert {e["status"] for e in record_of(out).values()} == {"pending"}


def test_a_local_worker_acts_on_its_first_sigterm_only():
    """The first SIGTERM stops the worker; the rest of a dead driver's burst is ignored,
    so none can cut the stopped item's clean-up short."""
    from synctalk_audio.jobs.local import _raise_interrupt

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        signal.raise_signal(signal.SIGTERM)  # ignored: nothing raised, the test goes on
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_engine_registry_loads_no_job_module():
    """The single-file command imports jobs.engine (for --engine) and nothing of the jobs:
    the package names its public objects lazily."""
    code = (
        "import sys, synctalk_audio.jobs.engine\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('synctalk_audio.jobs.'))\n"
        "print(loaded)\n"
        "from synctalk_audio.jobs import run_job, JobItem\n"
        "print(run_job.__module__, JobItem.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "['synctalk_audio.jobs.engine']",
        "synctalk_audio.jobs.run synctalk_audio.jobs.plan",
    ]
