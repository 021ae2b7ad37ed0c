"""The files of an output: feature array, frame files, metadata.json.

- the mode's feature file (`FeatureMode.feature_file`: ``aud_ave.npy``,
  ``aud_hu.npy``, ``aud_wenet.npy``): NumPy 1.0 ``.npy``, float32
  little-endian, C order; `write_features` at once or `NpyRowWriter` row by row;
- ``frames/frame_%05d.bin``: ``[uint32 LE count][count float32 LE]``
  (`write_frame_file`, `read_frame_file`), count = the frame shape's size;
- ``metadata.json`` (`write_metadata`), led by the `OUTPUT_MARK`.
"""

from __future__ import annotations

import io
import json
import os
import struct
from typing import Any

import numpy as np

from ..errors import ParameterError
from .features import AudioFeatures
from .layout import METADATA_FILE

__all__ = [
    "FRAME_HEADER",
    "OUTPUT_MARK",
    "NpyRowWriter",
    "read_frame_file",
    "write_features",
    "write_frame_file",
    "write_metadata",
]

#: Little-endian uint32 count before the float32 values of each frame file.
FRAME_HEADER = struct.Struct("<I")

#: The field `write_metadata` puts first in every metadata.json: what marks a
#: directory as this tool's output, which a later run may replace.
OUTPUT_MARK = ("written_by", "synctalk-audio")


class NpyRowWriter:
    """Write a float32 (rows, *row_shape) ``.npy`` file a few rows at a time.

    The header is written first for 0 rows and rewritten for the real count
    by `finish`; the row count never has to be known in advance (libsndfile's
    declared length is not always what decodes: a truncated MP3 declares its
    full length). NumPy's version 1.0 header is padded to a multiple of 64
    bytes (and, from NumPy 1.24, with 21 spare digits for the row count), so
    it has the same size for any count; `finish` checks it. The file equals
    ``np.save(path, rows.astype("<f4"))`` byte for byte.

    Parameters
    ----------
    path : str
        The file to create.
    width : int or tuple of int
        Values per row, or the shape of one row.
    """

    def __init__(self, path: str, width: int | tuple[int, ...]) -> None:
        self.path = path
        self.row_shape = (int(width),) if isinstance(width, int) else tuple(int(d) for d in width)
        self.rows = 0
        self._file = open(path, "wb")  # noqa: SIM115 (closed by finish/close)
        try:
            self._header_size = self._file.write(self._header(0))
        except BaseException:
            self._file.close()
            raise

    def _header(self, rows: int) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": "<f4", "fortran_order": False, "shape": (rows, *self.row_shape)}
        )
        return buffer.getvalue()

    def __enter__(self) -> NpyRowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, rows: np.ndarray) -> None:
        """Append float32 rows, shape (k, *row_shape)."""
        data = np.ascontiguousarray(rows, dtype="<f4")
        if data.shape[1:] != self.row_shape:
            shape = ", ".join(str(d) for d in self.row_shape)
            raise ValueError(f"rows must have shape (k, {shape}), got {data.shape}")
        self._file.write(data.tobytes())
        self.rows += data.shape[0]

    def finish(self) -> None:
        """Write the final header (the real row count) and close the file."""
        header = self._header(self.rows)
        if len(header) != self._header_size:
            raise RuntimeError(
                f"{self.path}: the .npy header for {self.rows} rows is {len(header)} bytes,"
                f" not the {self._header_size} reserved"
            )
        self._file.seek(0)
        self._file.write(header)
        self._file.close()

    def close(self) -> None:
        """Close the file (without finishing it)."""
        self._file.close()


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
    """Write the mode's feature file and the frame files (unless ``frames`` is False).

    The standard format's files without metadata.json (`outputs.sink.DirectorySink`),
    into ``directory`` directly; wrap the call in `atomic_output_dir`.
    Memory stays flat: each frame is a view of the array written as it is cut.
    """
    from .layout import Layout
    from .sink import DirectorySink

    layout = Layout.of(features.feature_mode, features.half_window)
    sink = DirectorySink(directory, layout, frames=frames)
    try:
        sink.append(features.array, features.frames() if frames else None)
    except BaseException:
        sink.close()
        raise
    sink.finish(None)


def write_metadata(directory: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write metadata.json (UTF-8, indented), the `OUTPUT_MARK` field first.

    Returns the dictionary written: ``metadata`` led by the mark.
    """
    key, value = OUTPUT_MARK
    written = {key: value, **metadata}
    with open(os.path.join(directory, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(written, f, indent=2)
        f.write("\n")
    return written
