"""The whole pipeline: audio → mel → encoder windows → encoder → aud_ave.

Build a `Pipeline` once per model (it loads the ONNX session once) and call
`Pipeline.process` for every input; `Pipeline.process_many` keeps both
cores busy on many files.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ._version import __version__
from .audio import AudioInfo, AudioSource, load_audio_with_info
from .encoder import Encoder, open_encoder
from .errors import ParameterError
from .features import AudioFeatures
from .limits import DEFAULT_MAX_DURATION, check_fps, check_max_duration
from .mel import as_audio_array, melspectrogram
from .options import MelOptions, PadMode
from .windows import cut_windows, require_min_samples, window_starts

__all__ = ["DEFAULT_MODEL", "MODES", "Pipeline"]

#: Where the command looks for the encoder when --model is not given.
DEFAULT_MODEL = os.path.join("models", "audio_encoder.onnx")
#: Encoder modes of SyncTalk_2D; only "ave" is implemented.
MODES = ("ave", "hubert", "wenet")

Progress = Callable[[int, int], None]

#: Windows cut and encoded per step (about 2.6 MB of windows at a time).
WINDOWS_PER_STEP = 512


def check_mode(mode: str) -> str:
    """Validate an encoder mode name; only ``ave`` is implemented so far."""
    if mode not in MODES:
        raise ParameterError(f"unknown mode '{mode}': expected one of {', '.join(MODES)}")
    if mode != "ave":
        raise ParameterError(
            f"mode '{mode}' is not supported yet: only 'ave' (SyncTalk_2D's AudioEncoder) is"
        )
    return mode


def check_pad_mode(pad_mode: str) -> PadMode:
    """Validate a pad mode name."""
    if pad_mode not in ("constant", "reflect"):
        raise ParameterError(
            f"unknown pad mode '{pad_mode}': expected 'constant' (librosa >= 0.10, default)"
            " or 'reflect' (librosa < 0.10)"
        )
    return pad_mode  # type: ignore[return-value]


def versions() -> dict[str, str]:
    """Versions of everything that shapes the numbers, for metadata.json."""
    import onnxruntime
    import soundfile
    import soxr

    return {
        "synctalk_audio": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
        "soxr": soxr.__version__,
        "platform": sys.platform,
    }


class Pipeline:
    """Audio in, SyncTalk_2D audio features out.

    Parameters
    ----------
    model : str, os.PathLike or Encoder
        Path of the exported ONNX encoder (``models/audio_encoder.onnx`` by
        default) or any object following the `Encoder` protocol.
    fps : float
        Video frame rate of the avatar (25 in SyncTalk_2D), from 1 to below 80.
    mode : {"ave"}
        Encoder mode; ``hubert`` and ``wenet`` are not supported yet.
    pad_mode : {"constant", "reflect"}
        STFT padding: librosa >= 0.10 (``constant``) or < 0.10 (``reflect``);
        use the one your avatar was trained with.
    batch_size : int, optional
        Windows per encoder call.
    threads : int, optional
        Encoder threads (ONNX Runtime intra-op); its default when None.
    max_duration : float or None
        Longest input file accepted, in seconds (24 h by default; None for no
        limit). Checked from the file's header before it is decoded, so a
        header that declares absurd work fails at once.

    Raises
    ------
    ParameterError
        If ``fps`` or ``max_duration`` is out of range (see `synctalk_audio.limits`).

    Examples
    --------
    >>> with Pipeline("models/audio_encoder.onnx") as pipe:  # doctest: +SKIP
    ...     feats = pipe.process("speech.wav")
    ...     feats.aud_ave.shape, feats.frame(0).shape
    ((1499, 512), (32, 16, 16))
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Encoder = DEFAULT_MODEL,
        *,
        fps: float = 25.0,
        mode: str = "ave",
        pad_mode: str = "constant",
        batch_size: int | None = None,
        threads: int | None = None,
        max_duration: float | None = DEFAULT_MAX_DURATION,
    ) -> None:
        self.mode = check_mode(mode)
        self.options = MelOptions(pad_mode=check_pad_mode(pad_mode))
        self.fps = check_fps(fps)
        self.max_duration = check_max_duration(max_duration)
        self.encoder: Encoder = open_encoder(model, batch_size=batch_size, threads=threads)

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
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if isinstance(source, np.ndarray):
            samples = as_audio_array(source, name="audio")
            info = AudioInfo(
                "<array>", 16000, 1, int(samples.shape[0]), "array/" + samples.dtype.name
            )
        else:
            samples, info = load_audio_with_info(source, max_duration=self.max_duration)
        timings["load_s"] = time.perf_counter() - start

        require_min_samples(samples.shape[0])
        t = time.perf_counter()
        mel = melspectrogram(samples, options=self.options)
        timings["mel_s"] = time.perf_counter() - t

        t = time.perf_counter()
        starts = window_starts(mel.shape[1], self.fps)
        aud_ave = self._encode(mel, starts, progress)
        timings["encode_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - start

        metadata = self._metadata(
            info,
            samples_16k=int(samples.shape[0]),
            mel_frames=int(mel.shape[1]),
            windows=int(starts.shape[0]),
            frames=int(aud_ave.shape[0]),
            timings=timings,
        )
        return AudioFeatures(aud_ave=aud_ave, mode=self.mode, metadata=metadata)

    def _metadata(
        self,
        info: AudioInfo,
        *,
        samples_16k: int,
        mel_frames: int,
        windows: int,
        frames: int,
        timings: dict[str, float],
    ) -> dict[str, Any]:
        """The input facts, counts, settings and timings of one run (metadata.json)."""
        return {
            "input": {
                "path": info.source
                if info.source.startswith("<")
                else os.path.abspath(info.source),
                "sample_rate": info.sample_rate,
                "channels": info.channels,
                "duration_s": info.duration,
                "format": info.format,
            },
            "counts": {
                "samples_16k": samples_16k,
                "mel_frames": mel_frames,
                "windows": windows,
                "frames": frames,
            },
            "settings": {
                "fps": self.fps,
                "mode": self.mode,
                "pad_mode": self.options.pad_mode,
                "frame_shape": [32, 16, 16],
            },
            "timings": timings,
        }

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

        What ``synctalk-audio process`` writes: aud_ave.npy, frames/ (unless
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
        from .output import atomic_output_dir

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
        block: each frame file as soon as the frame is final, aud_ave.npy row
        by row. Memory stays flat whatever the duration, and the files are
        byte for byte those `process` + `write_features` give. Arrays, file
        objects and other inputs go through `process`.

        Parameters
        ----------
        source : path, binary file object or numpy.ndarray
            As for `process`.
        directory : str
            Where to write aud_ave.npy, frames/ and metadata.json.
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
            the wall time, the encoder's facts and the versions.

        Raises
        ------
        ParameterError
            If the audio is shorter than 0.1875 s (16 mel frames).
        AudioLoadError
            If a file cannot be decoded.
        """
        from .audio import BLOCK_FRAMES, is_regular_audio_file
        from .blockwise import write_features_blockwise
        from .output import write_features, write_metadata

        if self.encoder is None:
            raise ParameterError("this Pipeline is closed")
        started = time.perf_counter() if started is None else started
        if is_regular_audio_file(source):
            metadata = write_features_blockwise(
                self,
                source,  # type: ignore[arg-type]
                directory,
                frames=frames,
                progress=progress,
                block_frames=BLOCK_FRAMES if block_frames is None else block_frames,
            )
        else:
            features = self.process(source, progress=progress)
            t = time.perf_counter()
            write_features(directory, features, frames=frames)
            metadata = features.metadata
            metadata["timings"]["write_s"] = time.perf_counter() - t
        metadata["settings"]["batch_size"] = self.encoder.describe().get("batch_size")
        metadata["settings"]["frame_files"] = frames
        metadata.update(self.describe())
        metadata["timings"]["wall_s"] = time.perf_counter() - started
        return write_metadata(directory, metadata)

    def _encode(self, mel: np.ndarray, starts: np.ndarray, progress: Progress | None) -> np.ndarray:
        """Encode the windows at ``starts`` straight into aud_ave's rows 1..N.

        Windows are cut WINDOWS_PER_STEP at a time, so memory does not grow
        with N x 5 KiB of windows; the encoder's rows do not depend on how
        the windows are grouped (tests/test_pipeline.py checks it).
        """
        count = starts.shape[0]
        aud_ave = np.empty((count + 2, self.encoder.feature_dim), dtype=np.float32)
        for begin in range(0, count, WINDOWS_PER_STEP):
            batch = cut_windows(mel, starts[begin : begin + WINDOWS_PER_STEP])
            aud_ave[1 + begin : 1 + begin + batch.shape[0]] = self.encoder.encode(batch)
            if progress is not None:
                progress(min(begin + WINDOWS_PER_STEP, count), count)
        # SyncTalk_2D saves [o[0], o[0..N-1], o[N-1]]: the end rows duplicated.
        aud_ave[0] = aud_ave[1]
        aud_ave[-1] = aud_ave[-2]
        return aud_ave

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
        count = workers if workers is not None else (os.cpu_count() or 1)
        if count < 1:
            raise ParameterError(f"workers must be >= 1, got {count}")
        if count == 1 or len(items) <= 1:
            return [self.process(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(count, len(items))) as pool:
            return list(pool.map(self.process, items))

    def describe(self) -> dict[str, Any]:
        """The encoder's facts and the versions in use, for metadata.json."""
        return {"model": self.encoder.describe(), "versions": versions()}
