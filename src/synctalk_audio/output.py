"""The output directory: aud_ave.npy, frames/frame_%05d.bin, metadata.json.

Everything is written into a temporary directory beside the destination and
renamed into place at the end, so an error or Ctrl-C never leaves a
half-written output; an existing output directory is replaced whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import ParameterError
from .features import AudioFeatures

__all__ = [
    "FRAME_HEADER",
    "atomic_file",
    "atomic_output_dir",
    "read_frame_file",
    "write_features",
    "write_metadata",
]

#: Little-endian uint32 count before the float32 values of each frame file.
FRAME_HEADER = struct.Struct("<I")


def check_output_dir(path: str) -> str:
    """Refuse an output path that is a file or whose parent is not writable."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ParameterError(
            f"output path {path} exists and is not a directory; choose another --output"
        )
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ParameterError(f"cannot write {path}: its parent directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ParameterError(f"cannot write {path}: no write permission in {parent}")
    return path


@contextlib.contextmanager
def atomic_output_dir(path: str) -> Iterator[str]:
    """Yield a temporary directory that becomes ``path`` when the block succeeds.

    On any exception (KeyboardInterrupt included) the temporary directory is
    removed and ``path`` is left as it was.
    """
    final = check_output_dir(path)
    parent = os.path.dirname(final)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.tmp-", dir=parent)
    try:
        yield staging
        os.chmod(staging, 0o755)
        if os.path.isdir(final):
            retired = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-", dir=parent)
            os.rename(final, os.path.join(retired, "old"))
            os.rename(staging, final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    On any exception (KeyboardInterrupt included) the temporary file is
    removed and ``path`` is left as it was. The new file gets mode 0644.
    """
    final = os.path.abspath(path)
    fd, staging = tempfile.mkstemp(
        prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=os.path.dirname(final)
    )
    os.close(fd)
    try:
        yield staging
        os.chmod(staging, 0o644)
        os.replace(staging, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise


def write_frame_file(path: str, frame: np.ndarray) -> None:
    """One frame: [uint32 LE count][count float32 LE], C order.

    Written with one ``os.write`` on a raw descriptor: a 60 s clip has 1499 of
    these files, and Python's buffered file objects cost several times more.
    """
    data = np.ascontiguousarray(frame, dtype="<f4")
    payload = memoryview(FRAME_HEADER.pack(data.size) + data.tobytes())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
    try:
        while payload:
            payload = payload[os.write(fd, payload) :]
    finally:
        os.close(fd)


def read_frame_file(path: str) -> np.ndarray:
    """Read a frame file back as a flat float32 array (checks the count)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < FRAME_HEADER.size:
        raise ParameterError(f"{path}: too short for a frame file")
    (count,) = FRAME_HEADER.unpack_from(blob)
    if len(blob) != FRAME_HEADER.size + 4 * count:
        raise ParameterError(
            f"{path}: header says {count} floats, file holds {(len(blob) - 4) / 4:g}"
        )
    return np.frombuffer(blob, dtype="<f4", offset=FRAME_HEADER.size).astype(np.float32)


def write_features(directory: str, features: AudioFeatures, *, frames: bool = True) -> None:
    """Write aud_ave.npy and the frame files (unless ``frames`` is False).

    Writes into ``directory`` directly; wrap the call in `atomic_output_dir`.
    Memory stays flat: each frame is a view of aud_ave written as it is cut.
    """
    np.save(os.path.join(directory, "aud_ave.npy"), features.aud_ave.astype("<f4"))
    if frames:
        frame_dir = os.path.join(directory, "frames")
        os.mkdir(frame_dir)
        for index, frame in enumerate(features.frames()):
            write_frame_file(os.path.join(frame_dir, f"frame_{index:05d}.bin"), frame)


def write_metadata(directory: str, metadata: dict[str, Any]) -> None:
    """Write metadata.json (UTF-8, indented)."""
    with open(os.path.join(directory, "metadata.json"), "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
