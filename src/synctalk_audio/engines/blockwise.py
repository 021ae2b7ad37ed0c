"""Long files in flat memory: decode, resample, mel, encode and write block by block.

`Pipeline.process_into` uses this for audio files when the mode streams.
The file is decoded in blocks (`AudioBlocks`), fed to a `FeatureStream`
(for ``ave``: soxr's streaming resampler, the online mel, the encoder
windows: equal to the whole-file path bit for bit, for any block size), and
each video frame is written the moment it is final: its frame file, and its
row appended to the mode's feature file (`FeatureMode.feature_file`), whose header is
written last. Memory holds a block, the front end's state and the block's
feature rows with the 2h - 1 before them, whatever the duration; the files
are byte for byte those of `Pipeline.process` + `write_features`
(tests/test_blockwise.py).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..encoders import Encoder, ModelKind
from ..frontends.audio import BLOCK_FRAMES, AudioBlocks
from ..outputs.metadata import input_facts, run_metadata
from ..outputs.sink import RowSink
from .streaming import FeatureStreamer, StreamFrame

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = ["write_features_blockwise"]

Progress = Callable[[int, int], None]


class _TimedEncoder:
    """An `Encoder` that adds up the time spent in ``encode``."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.seconds = 0.0

    @property
    def kind(self) -> ModelKind:
        return self.inner.kind

    @property
    def batch_size(self) -> int:
        return self.inner.batch_size

    def encode(self, windows: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.inner.encode(windows)
        finally:
            self.seconds += time.perf_counter() - started

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


def write_features_blockwise(
    pipe: Pipeline,
    source: str | os.PathLike[str],
    out: RowSink,
    *,
    progress: Progress | None = None,
    block_frames: int = BLOCK_FRAMES,
) -> dict[str, Any]:
    """Write the feature file and frames/ of an audio file into ``directory``, block by block.

    Parameters
    ----------
    pipe : Pipeline
        Its mode (one that streams), encoder, settings and ``max_duration`` are used.
    source : str or os.PathLike
        A regular audio file.
    out : RowSink
        Where rows and frames go as they become final (the caller finishes it).
    progress : callable, optional
        Called as ``progress(samples_decoded, samples_declared)`` after
        every block, and once with both equal at the end.
    block_frames : int
        Input frames decoded per block.

    Returns
    -------
    dict
        The metadata `Pipeline.process` returns (input, counts, settings,
        timings), with ``write_s`` added to the timings.
    """
    started = time.perf_counter()
    timed = _TimedEncoder(pipe.encoder)
    mode = pipe.mode
    streamer = FeatureStreamer.from_spec(pipe.spec, timed)
    load_s = feed_s = write_s = 0.0
    with AudioBlocks(source, block_frames=block_frames, max_duration=pipe.max_duration) as blocks:
        info = blocks.info
        stream = streamer.open(sample_rate=info.sample_rate, channels=info.channels)
        declared = max(info.frames, 1)

        def sink(final: list[StreamFrame]) -> None:
            if final:
                out.append(
                    np.stack([frame.row for frame in final]),
                    [frame.features for frame in final],
                    final[0].index,
                )

        decoded = iter(blocks)
        while True:
            t = time.perf_counter()
            block = next(decoded, None)
            load_s += time.perf_counter() - t
            if block is None:
                break
            t = time.perf_counter()
            final = stream.feed(block)
            feed_s += time.perf_counter() - t
            t = time.perf_counter()
            sink(final)
            write_s += time.perf_counter() - t
            if progress is not None:
                progress(min(blocks.frames_read, declared - 1), declared)
        t = time.perf_counter()
        final = stream.close()
        feed_s += time.perf_counter() - t
        t = time.perf_counter()
        sink(final)
        write_s += time.perf_counter() - t
        if progress is not None:
            progress(declared, declared)
    total = time.perf_counter() - started
    info = dataclasses.replace(info, frames=blocks.frames_read)
    return run_metadata(
        pipe.spec,
        input=input_facts(info),
        counts={**stream.counts, "frames": out.rows},
        timings={
            "load_s": load_s,
            f"{mode.front_end}_s": feed_s - timed.seconds,  # resampling, front end, cutting
            "encode_s": timed.seconds,
            "total_s": total - write_s,
            "write_s": write_s,
        },
    )
