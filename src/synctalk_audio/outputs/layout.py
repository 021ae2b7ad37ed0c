"""Where an output's files are: one `Layout` per mode and half window.

Every writer (`outputs.sink`), reader (``validate``), and check of what an
output directory may hold (`outputs.directory`) asks the layout instead of
spelling a file name:

- the mode's feature file (``aud_ave.npy``, ``aud_hu.npy``, ``aud_wenet.npy``),
- ``frames/frame_%05d.bin``, one per video frame,
- ``metadata.json``, led by the ownership mark (`outputs.files.OUTPUT_MARK`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..modes import FeatureMode

__all__ = [
    "FRAMES_DIR",
    "FRAME_NAME",
    "METADATA_FILE",
    "Layout",
    "feature_file_names",
    "frame_name",
]

#: The folder of the per-frame files.
FRAMES_DIR = "frames"
#: The run's facts.
METADATA_FILE = "metadata.json"
#: Names of the frame files (``frame_%05d.bin``; more digits past frame 99999).
FRAME_NAME = re.compile(r"frame_[0-9]{5,}\.bin\Z")


def frame_name(index: int) -> str:
    """The file name of frame ``index``: ``frame_%05d.bin``.

    Examples
    --------
    >>> frame_name(7), frame_name(123456)
    ('frame_00007.bin', 'frame_123456.bin')
    """
    return f"frame_{index:05d}.bin"


def feature_file_names() -> dict[str, FeatureMode]:
    """Each registered mode's feature file name -> the mode (read when asked, so modes
    registered later count too)."""
    from ..modes import REGISTRY

    return {mode.feature_file: mode for mode in REGISTRY.values()}


@dataclasses.dataclass(frozen=True)
class Layout:
    """The files of one output of ``mode`` (see the module docstring).

    Attributes
    ----------
    mode : FeatureMode
        The mode; its ``feature_file`` and ``row_shape`` are the feature file's.
    frame_shape : tuple of int
        The shape of one frame (the mode's for the run's half window).

    Examples
    --------
    >>> from synctalk_audio.modes import get_mode
    >>> layout = Layout.of(get_mode("wenet"), 8)
    >>> layout.feature_path("out"), layout.frame_path("out", 3), layout.frame_values
    ('out/aud_wenet.npy', 'out/frames/frame_00003.bin', 131072)
    """

    mode: FeatureMode
    frame_shape: tuple[int, ...]

    @classmethod
    def of(cls, mode: FeatureMode, half_window: int) -> Layout:
        """The layout of ``mode``'s outputs at half window ``half_window``."""
        return cls(mode, tuple(mode.frame_shape(half_window)))

    @property
    def feature_file(self) -> str:
        """The feature file's name."""
        return self.mode.feature_file

    @property
    def row_shape(self) -> tuple[int, ...]:
        """The shape of one row of the feature file."""
        return tuple(self.mode.row_shape)

    @property
    def frame_values(self) -> int:
        """float32 values in one frame file."""
        return math.prod(self.frame_shape)

    def feature_path(self, directory: str) -> str:
        """The feature file in ``directory``."""
        return os.path.join(directory, self.feature_file)

    @staticmethod
    def frames_dir(directory: str) -> str:
        """The frame files' folder in ``directory``."""
        return os.path.join(directory, FRAMES_DIR)

    @staticmethod
    def frame_path(directory: str, index: int) -> str:
        """Frame ``index``'s file in ``directory``."""
        return os.path.join(directory, FRAMES_DIR, frame_name(index))

    @staticmethod
    def metadata_path(directory: str) -> str:
        """metadata.json in ``directory``."""
        return os.path.join(directory, METADATA_FILE)
