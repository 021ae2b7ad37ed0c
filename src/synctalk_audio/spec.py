"""One run's settings, built and validated once: `RunSpec`.

Every entry point (the commands, `Pipeline`, `FeatureStreamer`, `run_job`
and a job's workers) builds one `RunSpec` from its arguments with
`RunSpec.create` and passes it on whole; nothing below re-validates or
re-assembles it. The spec answers what the run's outputs say about it
(`RunSpec.describe`, metadata.json's ``settings``) and its encoder batch
size (`RunSpec.encoder_batch_size`) without opening the model, and opens the
encoder when asked (`RunSpec.open_encoder`). It is picklable when its model
is a path, so a job sends it to its worker processes and Ray actors as it is.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from .encoders import DEFAULT_BACKEND, Backend, Encoder, get_backend, is_encoder
from .limits import DEFAULT_MAX_DURATION, check_count, check_max_duration
from .modes import DEFAULT_HALF_WINDOW, FeatureMode, ModeSettings, front_end_threads, get_mode
from .outputs.layout import Layout
from .outputs.sink import DEFAULT_OUTPUT_FORMAT, FeatureSink
from .outputs.sink import output_format as output_format_class

__all__ = ["RunSpec"]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """The validated settings of one run; build it with `RunSpec.create`.

    Attributes
    ----------
    mode : FeatureMode
        The feature mode.
    settings : ModeSettings
        The mode's validated settings: fps, half window, pad mode, the mode's
        own options and the front end's threads.
    model : str or Encoder
        The model file (the mode's ``default_model`` when none was given) or
        an object following the `Encoder` protocol.
    backend : str or Backend
        The encoder's runtime (`encoders.BACKENDS`), ``onnxruntime`` by default.
    batch_size : int or None
        The encoder batch size asked for (the model kind's default when None).
    threads : int or None
        Encoder threads asked for (the backend's default when None).
    max_duration : float or None
        Longest input accepted, seconds; None for no limit.
    frames : bool
        Whether outputs hold frames/frame_%05d.bin.
    output_format : str
        The outputs' format (`outputs.sink.OUTPUT_FORMATS`; ``npy``, the
        feature file + frames/ + metadata.json, by default).
    """

    mode: FeatureMode
    settings: ModeSettings
    model: str | Encoder
    backend: str | Backend = DEFAULT_BACKEND
    batch_size: int | None = None
    threads: int | None = None
    max_duration: float | None = DEFAULT_MAX_DURATION
    frames: bool = True
    output_format: str = DEFAULT_OUTPUT_FORMAT

    @classmethod
    def create(
        cls,
        mode: str | FeatureMode = "ave",
        model: str | os.PathLike[str] | Encoder | None = None,
        *,
        fps: float | None = None,
        half_window: int = DEFAULT_HALF_WINDOW,
        pad_mode: str = "constant",
        options: Mapping[str, object] | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
        backend: str | Backend | None = None,
        max_duration: float | None = DEFAULT_MAX_DURATION,
        frames: bool = True,
        output_format: str = DEFAULT_OUTPUT_FORMAT,
        stream: bool = False,
    ) -> RunSpec:
        """Validate every setting of a run, each by its one check.

        Parameters
        ----------
        mode : str or FeatureMode
            A registered mode (`synctalk_audio.modes.REGISTRY`).
        model : str, os.PathLike or Encoder, optional
            The mode's model file (its ``default_model`` when None) or an encoder.
        fps, half_window, pad_mode, options
            The mode's settings (`FeatureMode.settings`).
        batch_size, threads : int, optional
            Encoder batch size and threads (positive integers).
        backend : str or Backend, optional
            The encoder's runtime: a name of `encoders.BACKENDS` or a
            `Backend` (`encoders.DEFAULT_BACKEND` when None).
        max_duration : float or None
            Longest input, seconds (None: no limit).
        frames : bool
            Outputs hold frame files.
        output_format : str
            A registered output format (`outputs.sink.OUTPUT_FORMATS`).
        stream : bool
            The run streams: the mode must stream exactly.

        Returns
        -------
        RunSpec

        Raises
        ------
        ParameterError
            For any bad value; the error's ``parameter`` is the keyword, so a
            command can name its own option instead.

        Examples
        --------
        >>> spec = RunSpec.create("ave", "models/audio_encoder.onnx", batch_size=16)
        >>> spec.settings.fps, spec.encoder_batch_size
        (25.0, 16)
        >>> RunSpec.create("hubert").describe()["frame_shape"]
        [32, 32, 32]
        """
        found = get_mode(mode)
        output_format_class(output_format)  # a known format, or ParameterError
        if stream:
            found.check_streamable()
        if batch_size is not None:
            check_count(batch_size, "batch_size")
        if threads is not None:
            check_count(threads, "threads")
        settings = found.settings(
            fps=fps, half_window=half_window, pad_mode=pad_mode, options=options
        )
        settings = dataclasses.replace(settings, threads=front_end_threads(threads))
        if model is None:
            model = found.default_model
        elif isinstance(model, os.PathLike):
            model = os.fspath(model)
        elif not isinstance(model, str) and not is_encoder(model):
            raise TypeError(f"model must be a path or an Encoder, got {type(model).__name__}")
        found_backend = get_backend(backend)  # a known backend, or ParameterError
        return cls(
            mode=found,
            settings=settings,
            model=model,
            backend=found_backend.name if isinstance(backend, str) or backend is None else backend,
            batch_size=batch_size,
            threads=threads,
            max_duration=check_max_duration(max_duration),
            frames=bool(frames),
            output_format=output_format,
        )

    @property
    def model_path(self) -> str | None:
        """The model file, or None when the model is an `Encoder` object."""
        return self.model if isinstance(self.model, str) else None

    @property
    def encoder_batch_size(self) -> int:
        """The encoder's inputs per call, as the mode's model kind decides it (no model opened)."""
        return self.mode.batch_size(self.batch_size)

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with ``changes`` (field names); values are taken as validated."""
        return dataclasses.replace(self, **changes)

    def with_threads(self, threads: int | None) -> RunSpec:
        """The same run with ``threads`` encoder (and front-end) threads."""
        if threads is not None:
            check_count(threads, "threads")
        settings = dataclasses.replace(self.settings, threads=front_end_threads(threads))
        return dataclasses.replace(self, threads=threads, settings=settings)

    def with_absolute_model(self) -> RunSpec:
        """The same run with the model file's path made absolute (for other processes)."""
        path = self.model_path
        return self if path is None else dataclasses.replace(self, model=os.path.abspath(path))

    @property
    def backend_name(self) -> str:
        """The encoder backend's name."""
        return self.backend if isinstance(self.backend, str) else self.backend.name

    @property
    def layout(self) -> Layout:
        """Where the outputs' files are (`outputs.layout.Layout`)."""
        return Layout.of(self.mode, self.settings.half_window)

    def open_sink(self, directory: str, *, frames: bool | None = None) -> FeatureSink:
        """The output format's sink on ``directory``, an empty staging directory.

        ``frames`` None means the spec's `frames`.
        """
        use = self.frames if frames is None else frames
        return output_format_class(self.output_format)(directory, self.layout, frames=use)

    def open_encoder(self) -> Encoder:
        """The mode's encoder for the model (an `Encoder` object is returned as it is).

        Raises
        ------
        FileNotFoundError, ModelError
            If the model file is missing or not a model of the mode's kind.
        """
        return self.mode.open_encoder(
            self.model, backend=self.backend, batch_size=self.batch_size, threads=self.threads
        )

    def describe(self) -> dict[str, Any]:
        """metadata.json's ``settings``: the mode's settings, batch size and frame files.

        The backend and the output format are named only when they are not
        the defaults, so that outputs made with the defaults say what they
        always said (and a job resumes them).
        """
        described = {
            **self.mode.describe(self.settings),
            "batch_size": self.encoder_batch_size,
            "frame_files": self.frames,
        }
        if self.backend_name != DEFAULT_BACKEND:
            described["backend"] = self.backend_name
        if self.output_format != DEFAULT_OUTPUT_FORMAT:
            described["output_format"] = self.output_format
        return described
