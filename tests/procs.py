"""Processes for the job tests: the command as a subprocess, and Linux process facts.

The job tests of both engines run ``synctalk-audio`` as a subprocess
(`command`; `command_bounded` where a regression could hang or fill memory
or disk). The kill-and-resume tests of the local engine and the Ray cluster
fixture both need to know, from /proc, which processes a process started and
whether they have exited (a zombie counts as exited: it runs no code and
holds no files open).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``synctalk-audio ARGS`` in a new interpreter; its exit status and text output."""
    return subprocess.run(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def command_bounded(
    *args: str,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    file_bytes: int | None = None,
    text: bool = True,
) -> subprocess.CompletedProcess[Any]:
    """``synctalk-audio ARGS`` within bounds, so that a regression fails instead of hanging.

    The command runs in a new session with at most 2 GiB of data (and files of
    at most ``file_bytes``, when given); after ``timeout`` seconds its whole
    process group is killed and the test fails. Output is text, or bytes with
    ``text=False`` (for file names that are not UTF-8).
    """

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))
        if file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))

    proc = subprocess.Popen(
        [sys.executable, "-m", "synctalk_audio.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=text,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=limit,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(
            f"synctalk-audio {' '.join(args)} still ran after {timeout} s"
        ) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class Overran(BaseException):
    """A block ran past its `deadline`."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail the block after ``seconds`` (SIGALRM) instead of hanging.

    The error is no OSError (TimeoutError is one), which a loop over a
    directory would swallow and go on.
    """

    def expired(signum: int, frame: object) -> None:
        raise Overran(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (field 3 on), or None if ``pid`` is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def running(pid: int) -> bool:
    """Whether ``pid`` is alive and not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """The processes ``pid`` started, from /proc/PID/task/*/children."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:  # a thread may end meanwhile
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                found += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return found


def descendants(pids: set[int]) -> set[int]:
    """The PIDs of all living descendants of ``pids``."""
    parent_of: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                parent_of.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        for child in parent_of.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def states(pids: list[int]) -> dict[int, str]:
    """Each PID's state letter and kernel wait channel, or "gone": for failure messages."""
    out = {}
    for pid in pids:
        fields = _stat_fields(pid)
        try:
            with open(f"/proc/{pid}/wchan", encoding="ascii") as f:
                wchan = f.read()
        except OSError:
            wchan = ""
        out[pid] = "gone" if fields is None else f"{fields[0]} {wchan}"
    return out
