"""The batch engine: audio in, a mode's feature array and per-frame inputs out.

Build a `Pipeline` once per model (it loads the ONNX session once) and call
`Pipeline.process` for every input; `Pipeline.process_many` keeps both
cores busy on many files. What is computed is the feature mode's business
(`synctalk_audio.modes`): the pipeline holds a mode object and never asks
for its name.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..encoders import Backend, Encoder, file_sha256
from ..errors import ParameterError
from ..frontends.audio import AudioSource
from ..limits import DEFAULT_MAX_DURATION, check_count, usable_cpus
from ..modes import DEFAULT_HALF_WINDOW, FeatureMode
from ..outputs.features import AudioFeatures
from ..outputs.metadata import input_facts, run_metadata, versions
from ..spec import RunSpec

__all__ = ["Pipeline", "source_facts"]

Progress = Callable[[int, int], None]


def source_facts(path: str) -> dict[str, Any]:
    """``{"size", "mtime_ns", "sha256"}`` of the file ``path``, its status read before its bytes.

    Were the file changed while it is hashed or decoded, its modification
    time would no longer be the one returned, so a later check against the
    file finds the change. Raises `OSError` if the file cannot be read.
    """
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_sha256(path)}


class Pipeline:
    """Audio in, SyncTalk_2D audio features out.

    Parameters
    ----------
    model : str, os.PathLike or Encoder, optional
        Path of the mode's model (its ``default_model``,
        ``models/audio_encoder.onnx`` for ``ave``, when None) or any object
        following the `Encoder` protocol.
    fps : float, optional
        Video frame rate of the avatar; the mode's own rate when None (25 for
        ``ave``, which accepts 1 to below 80).
    mode : str or FeatureMode
        A registered feature mode (`synctalk_audio.modes.REGISTRY`): ``ave``
        or ``hubert``.
    half_window : int
        h: frame i's U-Net input is rows i - h .. i + h - 1 of the feature
        array; 8 (SyncTalk_2D) or 4 (Ultralight-Digital-Human), as the mode
        allows (``ave``: 8 only).
    pad_mode : {"constant", "reflect"}
        STFT padding: librosa >= 0.10 (``constant``) or < 0.10 (``reflect``);
        use the one your avatar was trained with.
    options : Mapping, optional
        The mode's own options (`FeatureMode.options`), e.g.
        ``{"odd_frames": "drop"}`` for ``hubert``; defaults when absent.
    batch_size : int, optional
        Windows per encoder call.
    threads : int, optional
        Threads of the encoder (ONNX Runtime intra-op; for wenet, chunks
        encoded at once, each on one thread) and of the C++ front end within
        one clip (mel, fbank; at least 64 frames each); when None, ONNX
        Runtime's default for the ave and hubert encoders and every CPU
        otherwise. The features do not depend on it.
    backend : str or Backend, optional
        The runtime of the encoder: a name of `encoders.BACKENDS`
        (``onnxruntime``, ``openvino``) or a `Backend`;
        `encoders.DEFAULT_BACKEND` when None. Ignored when ``model`` is an
        `Encoder`. The features of the backends agree within 1e-5.
    max_duration : float or None
        Longest input file accepted, in seconds (24 h by default; None for no
        limit). Checked from the file's header before it is decoded, so a
        header that declares absurd work fails at once.

    Raises
    ------
    ParameterError
        If the mode is unknown, ``fps`` or ``half_window`` is not one the mode
        produces, or ``max_duration`` is out of range (`synctalk_audio.limits`).

    Examples
    --------
    >>> with Pipeline("models/audio_encoder.onnx") as pipe:  # doctest: +SKIP
    ...     feats = pipe.process("speech.wav")
    ...     feats.aud_ave.shape, feats.frame(0).shape
    ((1499, 512), (32, 16, 16))
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Encoder | None = None,
        *,
        fps: float | None = None,
        mode: str | FeatureMode = "ave",
        half_window: int = DEFAULT_HALF_WINDOW,
        pad_mode: str = "constant",
        options: Mapping[str, object] | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
        backend: str | Backend | None = None,
        max_duration: float | None = DEFAULT_MAX_DURATION,
    ) -> None:
        spec = RunSpec.create(
            mode,
            model,
            fps=fps,
            half_window=half_window,
            pad_mode=pad_mode,
            options=options,
            batch_size=batch_size,
            threads=threads,
            max_duration=max_duration,
            backend=backend,
        )
        self._start(spec)

    @classmethod
    def from_spec(cls, spec: RunSpec) -> Pipeline:
        """A pipeline for a `RunSpec` already built (what the commands and job workers use).

        Examples
        --------
        >>> spec = RunSpec.create("ave", "models/audio_encoder.onnx")  # doctest: +SKIP
        >>> Pipeline.from_spec(spec).fps  # doctest: +SKIP
        25.0
        """
        pipe = cls.__new__(cls)
        pipe._start(spec)
        return pipe

    def _start(self, spec: RunSpec) -> None:
        #: The run's settings (`RunSpec`), validated once.
        self.spec = spec
        self.mode = spec.mode
        self.settings = spec.settings
        self.max_duration = spec.max_duration
        self.encoder = spec.open_encoder()
        self.fps = self.settings.fps
        self.half_window = self.settings.half_window
        self.pad_mode = self.settings.pad_mode

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the encoder session."""
        self.encoder = None  # type: ignore[assignment]

    def process(
        self,
        source: AudioSource | np.ndarray,
        *,
        progress: Progress | None = None,
    ) -> AudioFeatures:
        """Compute the features of one input.

        Parameters
        ----------
        source : path, binary file object or numpy.ndarray
            An audio file (any format libsndfile reads, any rate, any channel
            count; loaded exactly as ``librosa.load(path, sr=16000)``), or
            1-D float32/float64 samples already at 16 kHz.
        progress : callable, optional
            Called as ``progress(windows_done, windows_total)`` while encoding.

        Returns
        -------
        AudioFeatures
            ``aud_ave`` (N + 2, 512) and per-frame U-Net inputs on demand;
            ``metadata`` holds the input facts, counts and stage timings.

        Raises
        ------
        ParameterError
            If the audio is shorter than 0.1875 s (16 mel frames), or a file
            is longer than ``max_duration``.
        AudioLoadError
            If a file cannot be decoded.
        """
        if self.encoder is None:
            raise ParameterError("this Pipeline is closed")
        start = time.perf_counter()
        samples, info = self.mode.load(source, max_duration=self.max_duration)
        timings = {"load_s": time.perf_counter() - start}
        result = self.mode.compute(samples, self.encoder, self.settings, progress=progress)
        timings.update(result.timings)
        timings["total_s"] = time.perf_counter() - start
        metadata = run_metadata(
            self.spec,
            input=input_facts(info),
            counts={**result.counts, "frames": int(result.features.shape[0])},
            timings=timings,
        )
        return AudioFeatures(
            result.features, mode=self.mode, metadata=metadata, half_window=self.half_window
        )

    def process_to(
        self,
        source: AudioSource | np.ndarray,
        output_dir: str,
        *,
        frames: bool = True,
        progress: Progress | None = None,
        block_frames: int | None = None,
    ) -> dict[str, Any]:
        """Compute the features of one input and write them to ``output_dir``.

        What ``synctalk-audio process`` writes: the mode's feature file, frames/ (unless
        ``frames`` is False) and metadata.json, in a temporary directory that
        becomes ``output_dir`` when everything is written (`atomic_output_dir`):
        an error or Ctrl-C leaves nothing half-written. Audio files are
        processed block by block in flat memory (see `process_into`).

        Parameters
        ----------
        source : path, binary file object or numpy.ndarray
            As for `process`.
        output_dir : str
            The output directory.
        frames : bool
            Also write frames/frame_%05d.bin.
        progress : callable, optional
            Called as ``progress(done, total)`` while working.
        block_frames : int, optional
            Input frames decoded per block (``audio.BLOCK_FRAMES`` by default).

        Returns
        -------
        dict
            What metadata.json holds.
        """
        from ..outputs.directory import atomic_output_dir

        started = time.perf_counter()
        with atomic_output_dir(output_dir) as staging:
            return self.process_into(
                source,
                staging,
                frames=frames,
                progress=progress,
                started=started,
                block_frames=block_frames,
            )

    def process_into(
        self,
        source: AudioSource | np.ndarray,
        directory: str,
        *,
        frames: bool = True,
        progress: Progress | None = None,
        started: float | None = None,
        block_frames: int | None = None,
    ) -> dict[str, Any]:
        """Write the features of one input into an existing, empty ``directory``.

        The building block of `process_to`, which gives it a staging directory.
        An audio file (a regular file) is decoded,
        resampled, turned into mel frames, encoded and written block by
        block: each frame file as soon as the frame is final, the mode's
        feature file row by row. Memory stays flat whatever the duration, and the files are
        byte for byte those `process` + `write_features` give. Arrays, file
        objects and other inputs go through `process`.

        Parameters
        ----------
        source : path, binary file object or numpy.ndarray
            As for `process`.
        directory : str
            Where to write the mode's feature file, frames/ and metadata.json.
        frames : bool
            Also write frames/frame_%05d.bin.
        progress : callable, optional
            Called as ``progress(done, total)``: input samples decoded of
            those declared (block by block), or windows encoded (`process`).
        started : float, optional
            ``time.perf_counter()`` at the start of the run, for the
            ``wall_s`` timing; the call's start by default.
        block_frames : int, optional
            Input frames decoded per block (``audio.BLOCK_FRAMES`` by default).

        Returns
        -------
        dict
            What metadata.json holds: `process`'s metadata, the write time,
            the wall time, the encoder's facts and the versions. For a
            regular file, ``input`` also holds its ``size``, ``mtime_ns`` and
            ``sha256`` (`source_facts`), read before its audio: what a job's
            resume checks an output against (`synctalk_audio.jobs.resume`).

        Raises
        ------
        ParameterError
            If the audio is shorter than 0.1875 s (16 mel frames).
        AudioLoadError
            If a file cannot be decoded.
        """
        from ..frontends.audio import BLOCK_FRAMES, is_regular_audio_file
        from ..outputs.sink import BackgroundSink, RowSink
        from ..signals import unstoppable
        from .blockwise import write_features_blockwise

        if self.encoder is None:
            raise ParameterError("this Pipeline is closed")
        started = time.perf_counter() if started is None else started
        # Read before the audio: a file changed meanwhile no longer matches them.
        regular = is_regular_audio_file(source)
        facts = None
        if regular:
            with contextlib.suppress(OSError):  # unreadable: decoding says so in its words
                facts = source_facts(os.fspath(source))  # type: ignore[arg-type]
        sink: RowSink = self.spec.open_sink(directory, frames=frames)
        try:
            if self.mode.streams and regular:
                # Rows and frames are written by a thread while the next block encodes.
                sink = BackgroundSink(sink)
                metadata = write_features_blockwise(
                    self,
                    source,  # type: ignore[arg-type]
                    sink,
                    progress=progress,
                    block_frames=BLOCK_FRAMES if block_frames is None else block_frames,
                )
            else:
                features = self.process(source, progress=progress)
                t = time.perf_counter()
                sink.append(features.array, features.frames() if frames else None)
                metadata = features.metadata
                metadata["timings"]["write_s"] = time.perf_counter() - t
            metadata["settings"] = self.spec.replace(frames=bool(frames)).describe()
            metadata.update(self.describe())
            if facts is not None:
                metadata["input"].update(facts)
            metadata["timings"]["wall_s"] = time.perf_counter() - started
            # Inside the try: a stop while finish waits for the writer thread
            # must close the sink too, or the thread goes on writing frame
            # files into the staging directory as it is removed.
            return sink.finish(metadata)
        except BaseException:
            # A second stop signal (a job's worker gets one per thread of its
            # dead driver) must not cut the close short: the writer thread
            # would go on writing while the staging directory is removed.
            with unstoppable():
                sink.close()
            raise

    def process_many(
        self,
        sources: Iterable[AudioSource | np.ndarray],
        *,
        workers: int | None = None,
    ) -> list[AudioFeatures]:
        """Process many inputs concurrently, results in input order.

        Decoding, the mel spectrogram (C++, GIL released) and the encoder
        (ONNX Runtime, GIL released) of different inputs overlap, so both
        cores stay busy. Each result equals `process` of that input.

        Parameters
        ----------
        sources : iterable
            Paths, file objects or arrays, as for `process`.
        workers : int, optional
            Inputs in flight at once; the number of CPUs by default.
        """
        items: Sequence[Any] = list(sources)
        count = check_count(workers, "workers") if workers is not None else usable_cpus()
        if count == 1 or len(items) <= 1:
            return [self.process(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(count, len(items))) as pool:
            return list(pool.map(self.process, items))

    def describe(self) -> dict[str, Any]:
        """The encoder's facts and the versions in use, for metadata.json."""
        model = self.encoder.describe()
        return {"model": model, "versions": versions(model.get("backend"))}
