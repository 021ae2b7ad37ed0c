"""Comparing two output directories (``synctalk-audio validate``).

What is read, and how much memory it takes:

- the feature file of each directory: exactly one of the modes' names
  (``aud_ave.npy``, ``aud_hu.npy``, ``aud_wenet.npy``), a regular file, a
  NumPy ``.npy`` (format 1.0 or 2.0, as ``np.save`` writes) of float32
  (either byte order) in C order, shaped (rows, *row_shape) of its mode with
  at least one row, and exactly as long as its header says. All of that is
  checked from the header and the file's size before a value is read; the
  values are then read a block of rows at a time (`BLOCK_VALUES`), from
  both files together;
- ``frames/``: only files named ``frame_NNNNN.bin``, each a regular file
  ``[uint32 LE count][count float32 LE]`` whose count is one of the mode's
  frame sizes, its size checked against the count before it is read; one
  frame file of each side at a time.

Anything else (a FIFO, ``/dev/zero``, a truncated or forged ``.npy``,
another dtype or shape) raises `ParameterError` naming the file, what it
holds and what was expected. So memory stays a few megabytes whatever the
size of the outputs.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ..errors import ParameterError
from .layout import FRAME_NAME, FRAMES_DIR

if TYPE_CHECKING:
    from ..modes import FeatureMode

__all__ = ["BLOCK_VALUES", "compare_outputs"]

#: Feature-file values read from each side at a time (rows of a block x row size).
BLOCK_VALUES = 1 << 18
#: Longest .npy header accepted (NumPy's own limit when it loads a file).
MAX_NPY_HEADER = 10_000
_NPY_MAGIC = b"\x93NUMPY"
_REMEDY = "compare directories written by synctalk-audio process or stream"


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str) -> tuple[BinaryIO, int]:
    """Open ``path`` for reading if it is a regular file (symbolic links followed).

    A FIFO, a device (``/dev/zero``), a socket or a directory is refused
    without reading from it (and without blocking on a FIFO).

    Parameters
    ----------
    path : str
        The file.

    Returns
    -------
    file : binary file object
        Open for reading, at its start.
    size : int
        Its size in bytes when opened.

    Raises
    ------
    ParameterError
        If ``path`` is not a regular file.
    OSError
        If it cannot be opened (missing, no permission).
    """

    def refuse(mode: int) -> ParameterError:
        return ParameterError(
            f"{path} is {_kind(mode)}, not a regular file: validate reads only the files of"
            f" an output directory; {_REMEDY}"
        )

    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise refuse(info.st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)  # what was opened, should the path have changed meanwhile
        if not stat.S_ISREG(info.st_mode):
            raise refuse(info.st_mode)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_exactly(f: BinaryIO, size: int, path: str) -> bytes:
    """``size`` bytes of ``f``; `ParameterError` if the file ends first."""
    data = f.read(size)
    if len(data) != size:
        raise ParameterError(
            f"{path} became shorter while it was read: another program is writing it;"
            " validate it once it is written"
        )
    return data


class _FeatureFile:
    """A checked feature file, read a block of rows at a time (see the module docstring)."""

    def __init__(self, path: str, mode: FeatureMode) -> None:
        self.path = path
        self.mode = mode
        self._file, size = open_regular(path)
        try:
            self.shape, self.dtype, self._offset = self._header()
            self._check(size - self._offset)
        except BaseException:
            self._file.close()
            raise

    def _header(self) -> tuple[tuple[int, ...], np.dtype[Any], int]:
        """Shape, dtype and data offset from the .npy header, or `ParameterError`."""
        path = self.path
        lead = self._file.read(12)
        if not lead.startswith(_NPY_MAGIC) or len(lead) < 10:
            raise ParameterError(
                f"{path} is not a NumPy .npy file (it does not start with the .npy magic"
                f" string); {_REMEDY}"
            )
        major, minor = lead[6], lead[7]
        read_header = np.lib.format.read_array_header_1_0
        if (major, minor) == (1, 0):
            length = int.from_bytes(lead[8:10], "little")
        elif (major, minor) == (2, 0) and len(lead) == 12:
            length = int.from_bytes(lead[8:12], "little")
            read_header = np.lib.format.read_array_header_2_0
        else:
            raise ParameterError(
                f"{path} is a .npy file of format version {major}.{minor}; validate reads"
                f" versions 1.0 and 2.0 (what np.save writes for float32); {_REMEDY}"
            )
        if length > MAX_NPY_HEADER:
            raise ParameterError(
                f"{path} has a .npy header of {length} bytes (at most {MAX_NPY_HEADER} are"
                f" read): it is not a feature file; {_REMEDY}"
            )
        self._file.seek(0)
        try:
            np.lib.format.read_magic(self._file)
            shape, fortran, dtype = read_header(self._file)
        except ValueError as exc:
            raise ParameterError(f"{path} has a damaged .npy header ({exc}); {_REMEDY}") from exc
        if fortran and len(shape) > 1:
            raise ParameterError(
                f"{path} is stored in Fortran order; a feature file is C order:"
                " save np.ascontiguousarray(array) instead"
            )
        return tuple(int(d) for d in shape), dtype, self._file.tell()

    def _check(self, data_bytes: int) -> None:
        """The mode's dtype and row shape, at least one row, and the size the header declares."""
        mode, path = self.mode, self.path
        rows_of = ", ".join(str(d) for d in mode.row_shape)
        expected = f"mode '{mode.name}' writes float32 of shape (rows, {rows_of})"
        if self.dtype.kind != "f" or self.dtype.itemsize != 4 or self.dtype.fields is not None:
            raise ParameterError(
                f"{path} holds {self.dtype} values, not float32: {expected};"
                " save the array as float32 (array.astype(np.float32)) or " + _REMEDY
            )
        if len(self.shape) != 1 + len(mode.row_shape) or self.shape[1:] != mode.row_shape:
            raise ParameterError(f"{path} has shape {self.shape}: {expected}; {_REMEDY}")
        if self.shape[0] == 0:
            raise ParameterError(f"{path} holds no rows: {expected}, at least one; {_REMEDY}")
        declared = math.prod(self.shape) * 4
        if data_bytes < declared:
            raise ParameterError(
                f"{path} is truncated: its header declares {self.shape} float32"
                f" ({declared} bytes of values) but {max(data_bytes, 0)} bytes follow it;"
                " write it again (it was cut off while written or copied)"
            )
        if data_bytes > declared:
            raise ParameterError(
                f"{path} holds {data_bytes - declared} bytes past the {self.shape} float32"
                " values its header declares: it is not a file np.save wrote; write it again"
            )

    @property
    def rows(self) -> int:
        """Rows of the array."""
        return self.shape[0]

    def blocks(self, rows: int) -> Iterator[np.ndarray]:
        """The array from the start, ``rows`` rows at a time, as float64."""
        row_bytes = math.prod(self.mode.row_shape) * 4
        self._file.seek(self._offset)
        for begin in range(0, self.rows, rows):
            count = min(rows, self.rows - begin)
            data = _read_exactly(self._file, count * row_bytes, self.path)
            values = np.frombuffer(data, dtype=self.dtype).astype(np.float64)
            yield values.reshape(count, *self.mode.row_shape)

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _read_frame(path: str, sizes: dict[int, tuple[int, ...]], mode: FeatureMode) -> np.ndarray:
    """One frame file as float64, checked before it is read (see the module docstring)."""
    f, size = open_regular(path)
    with f:
        header = f.read(4)
        if len(header) < 4:
            raise ParameterError(f"{path} is too short for a frame file ({size} bytes); {_REMEDY}")
        (count,) = struct.unpack("<I", header)
        if count not in sizes:
            known = " or ".join(f"{n} {shape}" for n, shape in sorted(sizes.items()))
            raise ParameterError(
                f"{path} declares {count} values; a frame file of mode '{mode.name}' holds"
                f" {known}; {_REMEDY}"
            )
        if size != 4 + 4 * count:
            raise ParameterError(
                f"{path}: header says {count} floats, file holds {(size - 4) / 4:g}:"
                " write it again (it was cut off while written or copied)"
            )
        data = _read_exactly(f, 4 * count, path)
    return np.frombuffer(data, dtype="<f4").astype(np.float64)


def _frame_names(directory: str) -> list[str]:
    """The frame files of ``directory``/frames, sorted; `ParameterError` for any other entry."""
    frame_dir = os.path.join(directory, FRAMES_DIR)
    if not os.path.lexists(frame_dir):
        return []
    if not os.path.isdir(frame_dir):
        raise ParameterError(
            f"{frame_dir} is not a directory: an output's frames/ holds its frame files; {_REMEDY}"
        )
    names = sorted(os.listdir(frame_dir))
    for name in names:
        if not FRAME_NAME.match(name):
            raise ParameterError(
                f"{os.path.join(frame_dir, name)} is not a frame file: frames/ holds only"
                " frame_NNNNN.bin files; remove it, or " + _REMEDY
            )
    return names


def _note_nonfinite(invalid: list[str], path: str, bad: int, size: int) -> None:
    """Add a line to ``invalid`` if ``bad`` of ``size`` values are NaN or infinity."""
    if bad:
        invalid.append(f"{path} holds {bad} NaN/inf values of {size}")


def _nonfinite(values: np.ndarray) -> int:
    """How many of ``values`` are NaN or infinity."""
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def _feature_file(directory: str) -> tuple[str, FeatureMode]:
    """The feature file of an output directory and its mode (its one ``aud_*.npy``)."""
    from ..modes import REGISTRY

    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.lexists(directory) else "does not exist"
        raise ParameterError(
            f"{directory} {what}: validate compares two output directories"
            " (what synctalk-audio process --output writes)"
        )
    by_file = {m.feature_file: m for m in REGISTRY.values()}
    names = sorted(by_file)
    found = [n for n in names if os.path.lexists(os.path.join(directory, n))]
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise ParameterError(
            f"{directory} is not an output directory: {what} feature file ({', '.join(names)})"
        )
    return os.path.join(directory, found[0]), by_file[found[0]]


def _compare_features(
    report: dict[str, Any], invalid: list[str], ref: _FeatureFile, cand: _FeatureFile
) -> None:
    """The feature-file part of the report: errors, nonfinite values, per-row cosine."""
    row_size = math.prod(ref.mode.row_shape)
    rows = max(1, BLOCK_VALUES // row_size)
    if ref.shape != cand.shape:
        for side in (ref, cand):
            bad = sum(_nonfinite(block) for block in side.blocks(rows))
            _note_nonfinite(invalid, side.path, bad, side.rows * row_size)
        report["match"] = False
        name = os.path.basename(ref.path)
        report["problem"] = f"{name} shapes differ: {ref.shape} vs {cand.shape}"
        return
    worst = total = ref_max = best = 0.0
    worst_row: int | None = None
    cos_min = 1.0
    bad_ref = bad_cand = 0
    axes = tuple(range(1, 1 + len(ref.mode.row_shape)))
    first = 0
    for a, b in zip(ref.blocks(rows), cand.blocks(rows), strict=True):
        bad_ref += _nonfinite(a)
        bad_cand += _nonfinite(b)
        diff = np.abs(a - b)
        # Per row over the row's whole shape; the first row of the largest error.
        row_worst = diff.reshape(diff.shape[0], -1).max(axis=1)
        at = int(np.argmax(row_worst))  # the first NaN row if any, else the first largest
        value = float(row_worst[at])
        if value > best or (np.isnan(value) and not np.isnan(best)):
            best, worst_row = value, first + at
        first += a.shape[0]
        # np.maximum / np.minimum keep a NaN, as one max over the whole array would.
        worst = float(np.maximum(worst, diff.max()))
        total += float(diff.sum())
        ref_max = float(np.maximum(ref_max, np.abs(a).max()))
        # Per row over the row's whole shape ((512,), (2, 1024), (16, 512));
        # rows that are all zero on either side have no direction and are skipped.
        norms = np.sqrt(np.sum(a * a, axis=axes)) * np.sqrt(np.sum(b * b, axis=axes))
        used = norms != 0  # NaN included: it shows in the minimum
        if np.any(used):
            cos = np.sum(a * b, axis=axes)[used] / norms[used]
            cos_min = float(np.minimum(cos_min, cos.min()))
    size = ref.rows * row_size
    _note_nonfinite(invalid, ref.path, bad_ref, size)
    _note_nonfinite(invalid, cand.path, bad_cand, size)
    report["features_max_abs"] = worst
    # The row of the largest error (None when the files are equal).
    report["features_worst_row"] = worst_row
    # Relative to the reference's largest value: the fair yardstick for a real
    # encoder whose features are much larger than the test encoder's.
    report["reference_max_abs_value"] = ref_max
    report["features_mean_abs"] = total / size
    report["features_min_cosine"] = cos_min


def compare_outputs(reference: str, candidate: str) -> dict[str, Any]:
    """Compare two output directories; see ``synctalk-audio validate``.

    ``report["feature_files"]`` names each side's feature file (the mode's:
    ``aud_ave.npy``, ``aud_hu.npy``, ...); the keys about it start with
    ``features_`` whatever the mode (``features_max_abs``, ``features_worst_row``:
    the first row holding the largest error, ...), those about the frame
    files with ``frames_`` (``frames_worst_file``). ``report["invalid"]`` lists every
    file of either directory that holds NaN or infinity: such output is never
    valid, whatever the other side holds. Per-row cosines are over a row's
    whole shape; rows all zero on either side are left out of the minimum.

    Every file is checked before it is read (module docstring); memory stays
    a few megabytes whatever the outputs' size.

    Parameters
    ----------
    reference, candidate : str
        The two output directories.

    Returns
    -------
    dict
        The report (``synctalk-audio validate --json`` prints it).

    Raises
    ------
    ParameterError
        If either side is not an output directory of this layout: no feature
        file or more than one, a file that is not a regular file, a feature
        file that is not float32 of its mode's row shape or does not hold
        what its header declares, an entry of ``frames/`` that is not a
        frame file of the mode.
    """
    report: dict[str, Any] = {"reference": reference, "candidate": candidate}
    invalid: list[str] = []
    report["invalid"] = invalid
    (ref_path, mode), (cand_path, cand_mode) = _feature_file(reference), _feature_file(candidate)
    names = [os.path.basename(ref_path), os.path.basename(cand_path)]
    report["feature_files"] = names
    if names[0] != names[1]:
        report["match"] = False
        report["problem"] = f"feature files differ: {names[0]} vs {names[1]} (different modes)"
        return report
    ref = _FeatureFile(ref_path, mode)
    try:
        cand = _FeatureFile(cand_path, cand_mode)
        try:
            report["features_shape"] = [list(ref.shape), list(cand.shape)]
            ref_frames, cand_frames = _frame_names(reference), _frame_names(candidate)
            _compare_features(report, invalid, ref, cand)
        finally:
            cand.close()
    finally:
        ref.close()
    if "problem" in report:
        return report
    report["frame_counts"] = [len(ref_frames), len(cand_frames)]
    sizes = {math.prod(shape): shape for shape in mode.frame_shapes.values()}
    worst, total, count, cos_min = 0.0, 0.0, 0, 1.0
    worst_file: str | None = None
    if ref_frames != cand_frames:
        report["problem"] = "frame file lists differ"
    else:
        for name in ref_frames:
            paths = [os.path.join(side, FRAMES_DIR, name) for side in (reference, candidate)]
            a, b = (_read_frame(path, sizes, mode) for path in paths)
            for path, values in zip(paths, (a, b), strict=True):
                _note_nonfinite(invalid, path, _nonfinite(values), values.size)
            if a.shape != b.shape:
                report["problem"] = f"{name}: {a.size} vs {b.size} values"
                break
            d = np.abs(a - b)
            largest = float(d.max())
            if largest > worst or (worst_file is None and np.isnan(largest)):
                worst_file = os.path.join(FRAMES_DIR, name)
            worst = float(np.maximum(worst, largest))
            total += float(d.sum())
            count += d.size
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            if na > 0 and nb > 0:
                cos_min = min(cos_min, float(a @ b / (na * nb)))
    report["frames_max_abs"] = worst
    report["frames_worst_file"] = worst_file
    report["frames_mean_abs"] = total / count if count else 0.0
    report["frames_min_cosine"] = cos_min
    return report
