"""The job record: what happened to each input, kept under the output directory.

``OUTPUT/synctalk-job.jsonl`` holds one JSON object per line, one line per
event of an item (the latest line of an item is its state):

``status``
    ``pending`` (written for every item a run is about to work on, before
    it starts), ``done`` or ``failed``.
``input``, ``output``
    The input (absolute) and the output directory relative to OUTPUT (the
    item's key).
``size``, ``mtime_ns``, ``sha256``
    The input file's size and modification time when the run started
    (pending), and those the worker read, with its SHA-256, before it
    processed the input (done; the same facts as the output's metadata.json).
``settings``, ``model_sha256``
    What metadata.json's ``settings`` holds, and the model's SHA-256.
``error``
    The one-line error of a failed item, else null.
``duration_s``, ``frames``, ``timings``
    Seconds of audio and frames written; ``wall_s`` of the item, and
    ``started``/``finished`` (Unix time) of the run and the item; or
    ``adopted`` (Unix time) for a ``done`` line a later run wrote for an
    output it found in place (`jobs.resume`).

Each line is written with one ``write`` call to a file opened for appending,
as soon as the item finishes, so a kill leaves every line written before it
whole (power loss may cut the last line: an unreadable line is ignored;
the next run keeps its item's output if it is in place, `jobs.resume`). At
the end of a run the file is rewritten, atomically, with one line per item.
One job at a time writes an output directory: it holds
``.synctalk-job.jsonl.lock`` there while it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from ..outputs.directory import atomic_file, full_disk_named, output_lock
from .plan import RECORD_NAME

__all__ = ["Entry", "JobRecord"]

Entry = dict[str, Any]

#: What to do when the disk holding the record is full.
_FULL_ADVICE = (
    "free space there and run the same command again (finished items are complete and are kept)"
)


class JobRecord:
    """The record file of the job writing ``output`` (see the module docstring).

    Parameters
    ----------
    output : str
        The job's output directory (it must exist).
    """

    def __init__(self, output: str) -> None:
        self.path = os.path.join(output, RECORD_NAME)
        self._fd: int | None = None
        self._flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)

    @contextlib.contextmanager
    def locked(self) -> Iterator[JobRecord]:
        """Hold the job's lock and keep the record open for appending during the block.

        Raises
        ------
        ParameterError
            If another run holds the lock.
        """
        with output_lock(self.path, RECORD_NAME):
            with full_disk_named(self.path, _FULL_ADVICE):
                self._fd = os.open(self.path, self._flags, 0o644)
            try:
                yield self
            finally:
                if self._fd is not None:
                    os.close(self._fd)
                self._fd = None

    def load(self) -> dict[str, Entry]:
        """The latest entry of every item, by key; unreadable lines are skipped."""
        entries: dict[str, Entry] = {}
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and isinstance(entry.get("output"), str):
                        entries[entry["output"]] = entry
        except FileNotFoundError:
            pass
        return entries

    def append(self, entries: Iterable[Entry]) -> None:
        """Add entries, each line written whole with one call, at once."""
        if self._fd is None:
            raise RuntimeError("the job record is not open (use JobRecord.locked)")
        for entry in entries:
            data = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
            with full_disk_named(self.path, _FULL_ADVICE):
                written = os.write(self._fd, data)
            if written != len(data):  # pragma: no cover - a full disk
                raise OSError(f"could not write the job record {self.path} (disk full?)")

    def compact(self) -> None:
        """Rewrite the record atomically with only the latest entry of each item."""
        entries = self.load()
        with (
            full_disk_named(self.path, _FULL_ADVICE),
            atomic_file(self.path) as staging,
            open(staging, "w", encoding="utf-8") as f,
        ):
            for key in sorted(entries):
                f.write(json.dumps(entries[key], sort_keys=True) + "\n")
        if self._fd is not None:  # appends go to the new file from now on
            os.close(self._fd)
            self._fd = os.open(self.path, self._flags, 0o644)
