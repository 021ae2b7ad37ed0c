"""Processes for the job tests: the command as a subprocess, and Linux process facts.

The job tests of both engines run ``synctalk-audio`` as a subprocess
(`command`). The kill-and-resume tests of the local engine and the Ray cluster
fixture both need to know, from /proc, which processes a process started and
whether they have exited (a zombie counts as exited: it runs no code and
holds no files open).
"""

from __future__ import annotations

import os
import subprocess
import sys

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
