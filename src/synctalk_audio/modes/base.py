"""The feature-mode protocol: what a mode is, and what the engines ask of it.

A feature mode turns audio into one feature array (``aud_ave.npy``,
``aud_hu.npy``, ``aud_wenet.npy``: one row per video frame) and says how each
video frame's U-Net input is cut from it. Everything that differs between
modes lives in one `FeatureMode` subclass; the engines (`Pipeline`,
`FeatureStreamer`, the block-by-block writer, the commands, the writers and
metadata.json) hold a mode object and never ask for its name.

Adding a mode is one module defining a `FeatureMode` subclass plus one line in
``modes/__init__.py`` (`REGISTRY`). What the subclass provides:

Facts (class attributes)
    ``name`` (``--mode``), ``feature_file`` (``aud_ave.npy``), ``row_shape``
    (one row of the array: ``(512,)`` ave, ``(2, 1024)`` hubert,
    ``(16, 512)`` wenet), ``native_fps`` (the ``--fps`` default: 25, 25, 20),
    ``frame_shapes`` (per half-window h, the C-order reshape of rows
    i - h .. i + h - 1: ave ``{8: (32, 16, 16)}``; hubert ``{8: (32, 32, 32),
    4: (16, 32, 32)}``; wenet ``{8: (256, 16, 32), 4: (128, 16, 32)}``),
    ``default_model``, ``front_end`` (name of the front-end timing,
    ``mel`` -> ``mel_s``), ``stream_refusal`` (None if the mode streams
    exactly, else the one-line reason, e.g. hubert's whole-clip
    normalisation) and ``options`` (the mode's own settings, `ModeOption`:
    a name, its choices and default, e.g. hubert's ``odd_frames`` pad|drop;
    the commands offer each as ``--odd-frames`` and `FeatureMode.settings`
    validates them into `ModeSettings.options`, read with
    `ModeSettings.option`), ``exporter`` (``"module:function"`` turning the
    mode's checkpoint into its ONNX model for ``synctalk-audio export``,
    imported only when used; None if the mode has none, as wenet, whose
    upstream ships ``encoder.onnx``) and ``checkpoint_help`` (what that
    function takes as ``--checkpoint``).

`FeatureMode.check_fps`
    The rates the mode can produce. The default accepts only ``native_fps``
    (hubert's 50 Hz pairs and wenet's 5-frame hop fix their rates); ave
    accepts any rate in `limits.check_fps`'s range.

`FeatureMode.model_kind`
    The kind of model the mode runs (a name of `encoders.KINDS`);
    `FeatureMode.open_encoder` loads a model file of that kind on the chosen
    backend (`encoders.open_encoder`), which checks it (input and output
    names and shapes; a wrong model is a `ModelError` naming what the mode
    expects). No mode imports a runtime. The `Encoder` maps a batch of
    encoder inputs (B, ...) to rows (B, *kind.row_shape): ave's
    (B, 1, 80, 16) mel windows; wenet's (B, 1, 67, 80) fbank chunks (its
    encoder feeds zero caches and the offset itself); hubert's one
    normalised chunk (1, length) to its 50 Hz rows (frames, 1024), which
    `compute` concatenates and pairs. A new kind of model is a `ModelKind`
    in `encoders.kinds`.

`FeatureMode.load_file`
    The mode's loader: a path or file object in, 1-D samples at the front
    end's rate and an `AudioInfo` out (ave: the librosa-exact load; hubert and
    wenet: float64 first channel, soxr HQ). `FeatureMode.load` calls it, and
    takes a 1-D array as 16 kHz mono itself, the same for every mode.

`FeatureMode.compute`
    The batch recipe: samples -> front end -> encoder inputs -> encoder ->
    the whole feature array, plus its counts and front-end/encoder timings.
    Whole-clip steps (hubert's normalisation and chunking) live here.

`FeatureMode.open_rows` (only if the mode streams)
    A fresh `RowStream`: the per-stream state of the front end. The engine
    checks every chunk and converts it to float32 (int16 / 32768 and PCM
    float32 are exact there; a mode needing float64, e.g. for soxr, widens
    it exactly), calls `RowStream.to_mono`,
    `RowStream.accept` (encoder inputs that became final), runs the encoder
    (batching across streams), and hands the output to `RowStream.rows`,
    which returns the feature rows now known (ave adds its duplicated first
    and last rows there). The engine turns rows into frames with the
    half-window rule, so a streaming mode is exact as soon as its
    `RowStream` is. ``samples_needed`` states the lookahead rule.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from .. import encoders
from ..encoders import Encoder, is_encoder
from ..errors import ParameterError
from ..frontends.audio import TARGET_RATE, AudioInfo, AudioSource
from ..frontends.mel import as_audio_array
from ..limits import check_fps as check_fps_range
from ..options import PadMode

__all__ = [
    "DEFAULT_HALF_WINDOW",
    "BatchResult",
    "FeatureMode",
    "ModeOption",
    "ModeSettings",
    "RowStream",
    "check_pad_mode",
]

Progress = Callable[[int, int], None]

#: Rows before a frame's own row in its window: SyncTalk_2D's 8 (rows i-8 .. i+7).
DEFAULT_HALF_WINDOW = 8


def check_pad_mode(pad_mode: str) -> PadMode:
    """Validate a pad mode name."""
    if pad_mode not in ("constant", "reflect"):
        raise ParameterError(
            f"unknown pad mode '{pad_mode}': expected 'constant' (librosa >= 0.10, default)"
            " or 'reflect' (librosa < 0.10)",
            parameter="pad_mode",
        )
    return pad_mode  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class ModeOption:
    """A setting only some modes have (`FeatureMode.options`).

    Attributes
    ----------
    name : str
        Its name in `FeatureMode.settings` (``odd_frames``); the commands
        offer it as ``--odd-frames``.
    choices : tuple of str
        The values it takes.
    default : str
        Its value when not given.
    help : str
        One line for ``--help``.
    """

    name: str
    choices: tuple[str, ...]
    default: str
    help: str = ""

    @property
    def flag(self) -> str:
        """The command-line option: ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class ModeSettings:
    """The validated settings of one run of a mode (`FeatureMode.settings`).

    Attributes
    ----------
    fps : float
        Video frame rate; rows of the feature array per second.
    half_window : int
        h: a frame's window is rows i - h .. i + h - 1 of the feature array.
    pad_mode : {"constant", "reflect"}
        STFT padding of the mel front end (modes without one ignore it).
    options : tuple of (str, str)
        The mode's own options (`FeatureMode.options`), every one with its
        value (given or default), in the mode's order.
    threads : int
        Threads the C++ front end (mel, fbank) may use within one clip; the
        values do not depend on it. `configure` sets it from the engine's
        ``threads`` (all CPUs when that is None).
    """

    fps: float
    half_window: int = DEFAULT_HALF_WINDOW
    pad_mode: PadMode = "constant"
    options: tuple[tuple[str, str], ...] = ()
    threads: int = 1

    def option(self, name: str) -> str:
        """The value of the mode option ``name``."""
        for key, value in self.options:
            if key == name:
                return value
        raise KeyError(name)


@dataclasses.dataclass
class BatchResult:
    """What `FeatureMode.compute` returns for one clip.

    Attributes
    ----------
    features : numpy.ndarray
        float32 (rows, *row_shape): the feature array.
    counts : dict
        The mode's counts for metadata.json (ave: samples_16k, mel_frames, windows).
    timings : dict
        Seconds per stage, named ``<front_end>_s`` and ``encode_s``.
    """

    features: np.ndarray
    counts: dict[str, int]
    timings: dict[str, float]


class RowStream(Protocol):
    """Per-stream state of a streaming mode's front end (see the module docstring)."""

    def to_mono(self, data: np.ndarray) -> np.ndarray:
        """float32 (frames,) or (frames, channels) -> the mode's 1-D samples; no state change."""
        ...

    def accept(self, mono: np.ndarray) -> np.ndarray:
        """Take samples; return the encoder inputs (B, ...) that became final."""
        ...

    def finish(self) -> np.ndarray:
        """End of input: return the remaining encoder inputs."""
        ...

    def rows(self, encoded: np.ndarray, *, final: bool) -> np.ndarray:
        """Encoder output of the last `accept`/`finish` -> the feature rows now known."""
        ...

    def counts(self) -> dict[str, int]:
        """The stream's counts so far, as in `BatchResult.counts` (``samples_16k`` first)."""
        ...


class FeatureMode:
    """One feature mode; subclass it and register the subclass (module docstring)."""

    name: str = ""
    feature_file: str = ""
    row_shape: tuple[int, ...] = ()
    native_fps: float = 25.0
    frame_shapes: dict[int, tuple[int, ...]] = {}
    default_model: str = ""
    #: The kind of model it runs: a name of `encoders.KINDS`.
    model_kind: str = ""
    front_end: str = "front_end"
    #: None if the mode streams exactly; else why it cannot (one line).
    stream_refusal: str | None = "it has no streaming implementation"
    #: The mode's own settings (`ModeOption`), e.g. hubert's odd_frames.
    options: tuple[ModeOption, ...] = ()
    #: "module:function" exporting the mode's checkpoint to ONNX, or None.
    exporter: str | None = None
    #: What the exporter takes as ``--checkpoint``.
    checkpoint_help: str = ""

    # -- settings -------------------------------------------------------------
    def check_fps(self, fps: object, *, name: str = "fps") -> float:
        """The frame rates the mode produces; by default only ``native_fps``."""
        value = check_fps_range(fps, name=name)
        if value != self.native_fps:
            raise ParameterError(
                f"{name} {value:g} is not possible with mode '{self.name}': its features come"
                f" at {self.native_fps:g} fps only (leave it out or pass"
                f" {self.native_fps:g})",
                parameter=name,
            )
        return value

    def check_half_window(self, half_window: object, *, name: str = "half_window") -> int:
        """Return h if the mode has a frame shape for it; raise `ParameterError` otherwise."""
        if isinstance(half_window, (int, np.integer)) and not isinstance(half_window, bool):
            if int(half_window) in self.frame_shapes:
                return int(half_window)
        known = " or ".join(str(h) for h in sorted(self.frame_shapes, reverse=True))
        raise ParameterError(
            f"{name} {half_window!r} is not possible with mode '{self.name}': expected {known}"
            " (8 = SyncTalk_2D, 4 = Ultralight-Digital-Human)",
            parameter=name,
        )

    def check_options(self, options: Mapping[str, object] | None) -> tuple[tuple[str, str], ...]:
        """Every option of the mode with its value; `ParameterError` for an unknown one.

        The error's ``parameter`` is the option's name, so that a command
        names its own flag (``--odd-frames``).
        """
        given = dict(options or {})
        known = {o.name: o for o in self.options}
        for name in given:
            if name not in known:
                have = ", ".join(o.name for o in self.options) or "none"
                raise ParameterError(
                    f"{name} does not apply to mode '{self.name}' (its options: {have})",
                    parameter=name,
                )
        values = []
        for option in self.options:
            value = given.get(option.name, option.default)
            if value not in option.choices:
                raise ParameterError(
                    f"{option.name} {value!r} is not possible with mode '{self.name}':"
                    f" expected {' or '.join(option.choices)}",
                    parameter=option.name,
                )
            values.append((option.name, str(value)))
        return tuple(values)

    def settings(
        self,
        *,
        fps: float | None = None,
        half_window: int = DEFAULT_HALF_WINDOW,
        pad_mode: str = "constant",
        options: Mapping[str, object] | None = None,
    ) -> ModeSettings:
        """Validated settings; ``fps`` None means the mode's own rate.

        ``options`` are the mode's own (`FeatureMode.options`). Every error
        names the keyword in its ``parameter`` (`ParameterError.named`).
        """
        return ModeSettings(
            fps=self.native_fps if fps is None else self.check_fps(fps),
            half_window=self.check_half_window(half_window),
            pad_mode=check_pad_mode(pad_mode),
            options=self.check_options(options),
        )

    def batch_size(self, requested: int | None) -> int:
        """Encoder inputs per call for a requested batch size, decided without opening a model.

        The rule of the mode's model kind (`encoders.ModelKind.batch_size`):
        ave's requested or its default, 32; hubert's and wenet's one chunk per
        call. A mode with no model kind (its encoders are objects given to
        it) gets what was requested, or 1.
        """
        from ..encoders import get_kind

        if not self.model_kind:
            return 1 if requested is None else int(requested)
        return get_kind(self.model_kind).batch_size(requested)

    def frame_shape(self, half_window: int) -> tuple[int, ...]:
        """Shape of one frame's U-Net input for half-window h."""
        return self.frame_shapes[self.check_half_window(half_window)]

    @property
    def streams(self) -> bool:
        """Whether the mode streams exactly (`open_rows` works)."""
        return self.stream_refusal is None

    def check_streamable(self) -> None:
        """Raise `ParameterError` with `stream_refusal` if the mode cannot stream."""
        if self.stream_refusal is not None:
            raise ParameterError(f"mode '{self.name}' cannot stream: {self.stream_refusal}")

    # -- work -------------------------------------------------------------------
    def open_encoder(
        self,
        model: str | os.PathLike[str] | Encoder,
        *,
        backend: encoders.Backend | str | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> Encoder:
        """The mode's encoder: a path opened as a `model_kind` model, an `Encoder` as is.

        Parameters
        ----------
        model : str, os.PathLike or Encoder
            A model file, loaded with ``backend`` and checked to be of the
            mode's kind (`encoders.open_encoder`); or an object with
            ``encode`` and ``describe``, used as it is.
        backend : Backend or str, optional
            A backend of `encoders.BACKENDS`; `encoders.DEFAULT_BACKEND` when None.
        batch_size, threads : int, optional
            As `encoders.open_encoder` takes them.
        """
        if isinstance(model, (str, os.PathLike)):
            return encoders.open_encoder(
                self.model_kind, model, backend=backend, batch_size=batch_size, threads=threads
            )
        if is_encoder(model):
            return model
        raise TypeError(f"model must be a path or an Encoder, got {type(model).__name__}")

    def load(
        self, source: AudioSource | np.ndarray, *, max_duration: float | None
    ) -> tuple[np.ndarray, AudioInfo]:
        """Samples for the mode's front end and the input's facts.

        A file goes through the mode's `load_file`; a 1-D float32/float64
        array is taken as 16 kHz mono samples, as they are (every mode alike).
        """
        if isinstance(source, np.ndarray):
            samples = as_audio_array(source, name="audio")
            info = AudioInfo(
                "<array>", TARGET_RATE, 1, int(samples.shape[0]), "array/" + samples.dtype.name
            )
            return samples, info
        return self.load_file(source, max_duration=max_duration)

    def load_file(
        self, source: AudioSource, *, max_duration: float | None
    ) -> tuple[np.ndarray, AudioInfo]:
        """The mode's loader of a file: samples at 16 kHz and the input's facts."""
        raise NotImplementedError

    def compute(
        self,
        samples: np.ndarray,
        encoder: Encoder,
        settings: ModeSettings,
        *,
        progress: Progress | None = None,
    ) -> BatchResult:
        """The whole feature array of ``samples`` (the batch recipe)."""
        raise NotImplementedError

    def open_rows(self, settings: ModeSettings, *, sample_rate: int, channels: int) -> RowStream:
        """A fresh `RowStream` for a stream at ``sample_rate`` with ``channels``."""
        self.check_streamable()
        raise NotImplementedError

    def samples_needed(self, index: int, settings: ModeSettings) -> int:
        """Samples at the front end's rate that frame ``index`` needs (the lookahead rule)."""
        self.check_streamable()
        raise NotImplementedError

    def describe(self, settings: ModeSettings) -> dict[str, Any]:
        """The ``settings`` part of metadata.json."""
        return {
            "fps": settings.fps,
            "mode": self.name,
            "pad_mode": settings.pad_mode,
            "half_window": settings.half_window,
            "frame_shape": list(self.frame_shape(settings.half_window)),
            **dict(settings.options),
        }

    def __repr__(self) -> str:
        return f"<feature mode {self.name!r}>"
