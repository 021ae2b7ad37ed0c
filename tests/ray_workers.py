"""Picklable items and workers for the engine tests (imported by Ray's worker processes).

`FileWorker` stands in for a job's per-item worker: for each item it writes
one output file to a shared directory, atomically (a temporary name holding
the writer's PID, then a rename), and returns the name, the file's SHA-256
and its own PID. The content depends only on the item, so any process, any
attempt, writes the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

#: Bytes per output file; written in two halves with a pause between.
SIZE = 1 << 16


@dataclass(frozen=True)
class Item:
    """One unit of work: the output file's name and the seed of its content."""

    name: str
    seed: int


def content(item: Item) -> bytes:
    """The bytes `FileWorker` writes for ``item``."""
    block = hashlib.sha256(f"{item.name}:{item.seed}".encode()).digest()
    return (block * (SIZE // len(block) + 1))[:SIZE]


def temp_name(name: str, pid: int) -> str:
    """Where process ``pid`` writes ``name`` before renaming it."""
    return f".{name}.tmp-{pid}"


@dataclass(frozen=True)
class FileWorker:
    """A worker factory (the engines' ``make_worker``): builds one `work` per process.

    Parameters
    ----------
    out_dir : str
        The shared output directory.
    pause : float
        Seconds between writing the two halves of a file, so a kill can land
        in the middle of an item.
    die_on : str or None
        An item name on which the process kills itself (a crash on that input,
        on every attempt).
    """

    out_dir: str
    pause: float = 0.0
    die_on: str | None = None

    def __call__(self) -> Any:
        pid = os.getpid()

        def work(item: Item) -> tuple[str, str, int]:
            if item.name == self.die_on:
                os._exit(3)
            data = content(item)
            temp = os.path.join(self.out_dir, temp_name(item.name, pid))
            with open(temp, "wb") as f:
                f.write(data[: SIZE // 2])
                f.flush()
                time.sleep(self.pause)
                f.write(data[SIZE // 2 :])
            os.replace(temp, os.path.join(self.out_dir, item.name))
            return item.name, hashlib.sha256(data).hexdigest(), pid

        return work


class BrokenFactory:
    """A worker factory that fails in each process (like a model missing on a node)."""

    def __call__(self) -> Any:
        raise FileNotFoundError("no model at /models/ave.onnx")


def items(count: int) -> list[Item]:
    """``count`` distinct items."""
    return [Item(f"item{i:04d}.bin", 1000 + i) for i in range(count)]
