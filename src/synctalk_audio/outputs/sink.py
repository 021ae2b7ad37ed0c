"""Feature sinks: where rows and frames go the moment they are final.

Every path that writes an output (``process`` whole or block by block,
``stream --output``, a job's items, `Pipeline.process_to`) opens one
`FeatureSink` on a staging directory, appends rows and frames as they
become final, and finishes it with the run's metadata; the staging
directory is then renamed into place (`outputs.directory`). Nothing a sink
holds grows with the duration.

Output formats are registered in `OUTPUT_FORMATS` (``--output-format``); a
new format is one class following `FeatureSink` (a constructor
``(directory, layout, *, frames)``, ``append``, ``finish``, ``close`` and
an ``owns`` class method saying which names of a directory it writes) and
one line there, or `register_output_format` from outside the package.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

import numpy as np

from ..errors import ParameterError
from .files import NpyRowWriter, write_frame_file, write_metadata
from .layout import FRAME_NAME, FRAMES_DIR, METADATA_FILE, Layout, feature_file_names

__all__ = [
    "DEFAULT_OUTPUT_FORMAT",
    "BackgroundSink",
    "OUTPUT_FORMATS",
    "DirectorySink",
    "FeatureSink",
    "RowSink",
    "open_sink",
    "output_format",
    "register_output_format",
]


class RowSink(Protocol):
    """What a writer does with a sink: append final rows and frames, then finish or close."""

    @property
    def rows(self) -> int:
        """Rows appended so far."""
        ...

    def append(
        self, rows: np.ndarray, frames: Iterable[np.ndarray] | None = None, first: int = 0
    ) -> None:
        """Append final rows (k, *row_shape) and, with them, frames ``first`` .. ``first + k - 1``.

        ``frames`` None appends rows only (an output without frame files).
        """
        ...

    def finish(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Complete the output with ``metadata``; return what was written as metadata."""
        ...

    def close(self) -> None:
        """Release the files without finishing (the staging directory is then removed)."""
        ...


class FeatureSink(RowSink, Protocol):
    """What every output format provides (see the module docstring): a `RowSink`
    made as ``Format(directory, layout, frames=...)``, with a name and the names it owns."""

    #: The name ``--output-format`` selects it by.
    name: ClassVar[str]

    def __init__(self, directory: str, layout: Layout, *, frames: bool) -> None: ...

    @classmethod
    def owns(cls, name: str, is_dir: bool) -> bool:
        """Whether an entry ``name`` of an output directory is one this format writes."""
        ...


class DirectorySink:
    """The standard format (``npy``): the mode's feature file, ``frames/``, metadata.json.

    - the feature file (``aud_ave.npy``, ...): float32 ``.npy``, rows
      appended as they come and the header written last
      (`outputs.files.NpyRowWriter`), byte for byte ``np.save`` of the whole array;
    - ``frames/frame_%05d.bin``: ``[uint32 LE count][count float32 LE]``, one
      file per frame, written the moment the frame is final;
    - ``metadata.json``, led by the ownership mark.

    Examples
    --------
    >>> import tempfile
    >>> from synctalk_audio.modes import get_mode
    >>> folder = tempfile.mkdtemp()
    >>> sink = DirectorySink(folder, Layout.of(get_mode("ave"), 8), frames=False)
    >>> sink.append(np.zeros((3, 512), np.float32))
    >>> sink.finish({"counts": {"frames": sink.rows}})["counts"]
    {'frames': 3}
    >>> sorted(os.listdir(folder))
    ['aud_ave.npy', 'metadata.json']
    """

    name: ClassVar[str] = "npy"

    def __init__(self, directory: str, layout: Layout, *, frames: bool) -> None:
        self.directory = directory
        self.layout = layout
        self.frames = frames
        if frames:
            os.mkdir(layout.frames_dir(directory))
        self._writer = NpyRowWriter(layout.feature_path(directory), layout.row_shape)

    @property
    def rows(self) -> int:
        """Rows appended so far."""
        return self._writer.rows

    def append(
        self, rows: np.ndarray, frames: Iterable[np.ndarray] | None = None, first: int = 0
    ) -> None:
        """Write the frames' files (when the sink has frames), then append the rows."""
        if self.frames and frames is not None:
            for index, frame in enumerate(frames, start=first):
                write_frame_file(self.layout.frame_path(self.directory, index), frame)
        self._writer.append(rows)

    def finish(self, metadata: dict[str, Any] | None) -> dict[str, Any]:
        """The feature file's final header, then metadata.json (none when ``metadata`` is None)."""
        self._writer.finish()
        return {} if metadata is None else write_metadata(self.directory, metadata)

    def close(self) -> None:
        """Close the feature file unfinished."""
        self._writer.close()

    @classmethod
    def owns(cls, name: str, is_dir: bool) -> bool:
        """metadata.json, a registered mode's feature file, the frames folder."""
        if is_dir:
            return name == FRAMES_DIR
        return name == METADATA_FILE or name in feature_file_names()

    @staticmethod
    def owns_frame(name: str) -> bool:
        """Whether ``name`` in the frames folder is a frame file."""
        return FRAME_NAME.match(name) is not None


#: Seconds `BackgroundSink.close` waits for a write in progress.
CLOSE_WAIT_S = 5.0


class BackgroundSink:
    """Any `RowSink`, its appends done by one writer thread while the caller goes on.

    Writing frame files costs about a tenth of a long run; the encoder
    releases the GIL, so the writes overlap with the next block's encoding.
    At most ``depth`` appends wait at a time (memory stays bounded); the
    writes happen in order, exactly as the wrapped sink would make them. A
    write's error (a full disk, a stop raised inside it) is raised in the
    caller at its next `append`, at `finish` or `close`. `close` (a stop, an
    error) skips the waiting writes and waits up to `CLOSE_WAIT_S` for the
    one in progress, so a stop is never held up by a stalled disk for
    longer; a write that ends later finds its directory removed and fails
    quietly (it never creates the directory again), and the writer thread
    then closes the wrapped sink itself, so no file is left open.

    Parameters
    ----------
    inner : RowSink
        The sink that writes.
    depth : int
        Appends that may wait for the writer.
    """

    def __init__(self, inner: RowSink, depth: int = 4) -> None:
        import queue

        self.inner = inner
        self._queue: queue.Queue[tuple[np.ndarray, list[np.ndarray] | None, int] | None] = (
            queue.Queue(maxsize=depth)
        )
        self._error: BaseException | None = None
        self._rows = 0
        # Who closes the wrapped sink after `close`: the caller if the writer
        # has ended by then, else the writer as it ends (decided under the lock).
        self._ending = threading.Lock()
        self._ended = False
        self._close_when_ended = False
        # Set by the writer as it ends. Waited on instead of Thread.join: a
        # join that a stop signal interrupts can leave a thread that is still
        # writing marked as stopped (CPython 3.11's Thread.join), and a close
        # that believed it would remove the staging directory under it.
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._write, name="synctalk-writer", daemon=True)
        self._thread.start()

    @property
    def rows(self) -> int:
        """Rows appended so far (handed to the writer)."""
        return self._rows

    def _write(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self._error is None:
                try:
                    self.inner.append(*item)
                except BaseException as exc:  # raised in the caller's thread
                    self._error = exc
        with self._ending:
            self._ended = True
            close = self._close_when_ended
        if close:  # `close` gave up waiting for this thread: close the sink here
            with contextlib.suppress(Exception):
                self.inner.close()
        self._done.set()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def append(
        self, rows: np.ndarray, frames: Iterable[np.ndarray] | None = None, first: int = 0
    ) -> None:
        """Hand rows and frames to the writer (waits while ``depth`` appends are waiting)."""
        self._raise()
        listed = None if frames is None else list(frames)
        self._queue.put((rows, listed, first))
        self._rows += rows.shape[0]

    def _stop(self, timeout: float | None = None) -> None:
        """Ask the writer to end after the queued writes; wait up to ``timeout`` for it."""
        if self._done.is_set():
            return
        try:
            self._queue.put(None, timeout=timeout)
        except Exception:  # queue.Full: the writer is stalled; it is not waited for
            return
        self._done.wait(timeout)

    def finish(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Wait for every write, then finish the wrapped sink."""
        self._stop()
        self._raise()
        return self.inner.finish(metadata)

    def close(self) -> None:
        """Stop the writer (the waiting writes are skipped) and close the wrapped sink."""
        error = self._error
        self._error = error or _Closing()
        while True:  # the waiting writes are dropped, not made
            try:
                self._queue.get_nowait()
            except Exception:  # queue.Empty
                break
        self._stop(CLOSE_WAIT_S)
        with self._ending:
            ended = self._ended
            self._close_when_ended = not ended
        if ended:
            self.inner.close()


class _Closing(Exception):
    """Set as a `BackgroundSink`'s error while it closes: the waiting writes are skipped."""


#: ``--output-format`` name -> the format's class.
OUTPUT_FORMATS: dict[str, type[FeatureSink]] = {"npy": DirectorySink}
#: The format of every output unless another is asked for.
DEFAULT_OUTPUT_FORMAT = "npy"


def register_output_format(cls: type[FeatureSink]) -> type[FeatureSink]:
    """Add an output format under its ``name`` (usable as a class decorator)."""
    if not getattr(cls, "name", ""):
        raise ValueError("an output format needs a name")
    OUTPUT_FORMATS[cls.name] = cls
    return cls


def output_format(name: str) -> type[FeatureSink]:
    """The registered format ``name``.

    Raises
    ------
    ParameterError
        If none has that name; the message lists those that do.
    """
    found = OUTPUT_FORMATS.get(name)
    if found is None:
        raise ParameterError(
            f"output_format {name!r} is unknown: expected one of {', '.join(OUTPUT_FORMATS)}",
            parameter="output_format",
        )
    return found


def open_sink(name: str, directory: str, layout: Layout, *, frames: bool) -> FeatureSink:
    """Open the format ``name`` on ``directory`` (an empty staging directory)."""
    return output_format(name)(directory, layout, frames=frames)
