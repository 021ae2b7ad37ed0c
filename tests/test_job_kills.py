"""A job SIGKILLed at any moment, then run again, redoes no item whose output was in place.

The job (12 short clips, a tiny encoder, one worker in the command's own
process, or two worker processes) runs in a subprocess and is SIGKILLed at
many points: at fixed delays spread over a whole run (start-up, planning,
the ``pending`` lines, items in progress, the final rewrite of the record,
after the end), and right after the n-th output directory is renamed into
place, found by polling. Worker processes outlive the killed driver for a
moment (they are told to stop, and clean up); the rerun starts when they
are gone. After a rename, a result's ``done`` line is held back 40 ms (the
subprocess wraps `JobRecord.append`; the package is unchanged), so the kill
lands between an output's rename and its record line: the case the record
alone cannot prove and the output's metadata.json must.

After each kill, every output directory holding metadata.json and the
feature file is noted (inode and mtime of both), the job is run again, and
none of those may be redone (same inode, same mtime), every other item is
done, and the outputs equal a clean run's (byte for byte, metadata.json
without its timings and encoder threads).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from procs import children, running
from tiny_models import make_tiny_encoder

from synctalk_audio.jobs import run_job
from synctalk_audio.jobs.plan import RECORD_NAME

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIPS = 12
#: Seconds a result's done line is held back in the killed run.
HOLD_S = 0.04

#: The killed run: the command, with each result's done line written HOLD_S late.
SCRIPT = f"""
import sys, time
from synctalk_audio.jobs.record import JobRecord
append = JobRecord.append
def held(self, entries):
    entries = list(entries)
    if any(e.get("status") == "done" and "wall_s" in e.get("timings", {{}}) for e in entries):
        time.sleep({HOLD_S})
    append(self, entries)
JobRecord.append = held
from synctalk_audio.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _clips(tmp_path) -> str:
    folder = tmp_path / "clips"
    folder.mkdir()
    sources = ("speech_16k_s16_mono.wav", "speech_16k.flac", "speech_8k_u8.wav")
    for i in range(CLIPS):
        shutil.copy(os.path.join(DATA, sources[i % len(sources)]), folder / f"c{i:02d}.wav")
    return str(folder)


def _keys() -> list[str]:
    return [f"c{i:02d}" for i in range(CLIPS)]


def _outputs(out: str) -> dict[str, bytes]:
    """Every file of every item output, metadata.json without timings and encoder threads."""
    found = {}
    for key in _keys():
        for top, _, names in os.walk(os.path.join(out, key)):
            for name in names:
                path = os.path.join(top, name)
                with open(path, "rb") as f:
                    data = f.read()
                if name == "metadata.json":
                    meta = json.loads(data)
                    meta.pop("timings")
                    meta["model"].pop("threads")  # each worker's share of the CPUs
                    data = json.dumps(meta, sort_keys=True).encode()
                found[os.path.relpath(path, out)] = data
    return found


def _in_place(out: str) -> dict[str, tuple[tuple[int, int], ...]]:
    """Item outputs holding metadata.json and aud_ave.npy: (inode, mtime) of each, by key."""
    found = {}
    for key in _keys():
        files = [os.path.join(out, key, name) for name in ("metadata.json", "aud_ave.npy")]
        if all(os.path.isfile(path) for path in files):
            found[key] = tuple((os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in files)
    return found


def _recorded_done(out: str) -> set[str]:
    entries: dict[str, dict] = {}
    try:
        with open(os.path.join(out, RECORD_NAME), encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                entries[entry["output"]] = entry
    except FileNotFoundError:
        pass
    return {key for key, entry in entries.items() if entry["status"] == "done"}


def _start(clips: str, model: str, out: str, workers: int = 1) -> subprocess.Popen[bytes]:
    argv = ["process", "--audio", clips, "--model", model, "--output", out]
    argv += ["--workers", str(workers)]
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(proc: subprocess.Popen[bytes], out: str, point: tuple[str, float]) -> None:
    """SIGKILL ``proc`` after ``point[1]`` seconds ("after") or its n-th output ("output")."""
    kind, value = point
    started = time.monotonic()
    while proc.poll() is None:
        if kind == "after" and time.monotonic() - started >= value:
            break
        if kind == "output" and len(_in_place(out)) >= value:
            break
        assert time.monotonic() - started < 120, "the job did not get going"
        time.sleep(0.001)
    workers = children(proc.pid) if proc.poll() is None else []
    if proc.poll() is None:
        proc.kill()  # the driver only: its workers follow it
    proc.wait()
    deadline = time.monotonic() + 60
    while any(running(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers outlived the driver"
        time.sleep(0.01)


@pytest.mark.slow
def test_a_job_killed_anywhere_redoes_no_finished_item(tmp_path):
    model = make_tiny_encoder(tmp_path / "tiny.onnx")
    clips = _clips(tmp_path)
    clean = str(tmp_path / "clean")
    began = time.monotonic()
    proc = _start(clips, model, clean)
    assert proc.wait() == 0
    whole = time.monotonic() - began
    want = _outputs(clean)
    assert len(_in_place(clean)) == CLIPS

    # (kind, when, workers)
    points = [("after", whole * f, 1) for f in (0.05, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97, 1.2)]
    points += [("output", n, 1) for n in (1, 2, 5, 8, 11, CLIPS)]
    points += [("output", n, 2) for n in (1, 6, 11)]
    adopted = 0
    kept_total = 0
    for number, (kind, when, workers) in enumerate(points):
        point = (kind, when, workers)
        out = str(tmp_path / f"out{number}")
        _kill_when(_start(clips, model, out, workers), out, (kind, when))
        kept = _in_place(out)
        unrecorded = set(kept) - _recorded_done(out)
        summary = run_job(out, [clips], model=model, workers=1)
        assert summary.ok, (point, summary.failed)
        redone = {item.key for item in summary.done}
        assert not redone & set(kept), (point, sorted(redone & set(kept)))
        assert redone | set(kept) == set(_keys()), point
        assert summary.skipped == len(kept), point
        for key, stamps in kept.items():
            assert _in_place(out)[key] == stamps, (point, key)
        assert _outputs(out) == want, point
        assert _recorded_done(out) == set(_keys()), point
        adopted += len(unrecorded)
        kept_total += len(kept)
    # The points reached the case the record cannot prove: outputs in place, not recorded.
    assert adopted >= 3, adopted
    print(f"{len(points)} kill points, {kept_total} outputs kept, {adopted} of them unrecorded")
