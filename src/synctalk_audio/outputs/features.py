"""From a mode's feature array to the U-Net's per-frame audio input.

The feature array (``aud_ave`` for mode ``ave``: the encoder output with its
first and last rows duplicated, exactly what SyncTalk_2D saves for training)
has one row per video frame. The U-Net input of video frame i is rows
i - h .. i + h - 1 of it, zero outside, reshaped C-order to the mode's frame
shape for that half-window h (ave, h = 8: (32, 16, 16)). `AudioFeatures`
keeps only the array and cuts each frame's window on demand, so nothing of
size frames x frame size exists unless asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..modes import DEFAULT_HALF_WINDOW, FeatureMode, get_mode

__all__ = ["AudioFeatures"]


@dataclasses.dataclass
class AudioFeatures:
    """The audio features of one clip.

    Attributes
    ----------
    array : numpy.ndarray
        float32 (frames, *row_shape): the mode's feature array (for ``ave``,
        (N + 2, 512) as SyncTalk_2D's ``aud_ave.npy``; also `aud_ave`).
    mode : FeatureMode or str
        The mode that made it (a name is looked up in the registry).
    metadata : dict
        Input facts, counts, settings and timings (what metadata.json holds).
    half_window : int
        h: frame i's window is rows i - h .. i + h - 1 (8, SyncTalk_2D).

    Examples
    --------
    >>> import numpy as np
    >>> feats = AudioFeatures(np.ones((5, 512), np.float32))
    >>> len(feats), feats.frame(0).shape
    (5, (32, 16, 16))
    >>> float(feats.frame(0)[:16].sum())  # rows -8..-1 are zeros
    0.0
    """

    array: np.ndarray
    mode: FeatureMode | str = "ave"
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    half_window: int = DEFAULT_HALF_WINDOW

    def __post_init__(self) -> None:
        self.mode = get_mode(self.mode)
        self.half_window = self.mode.check_half_window(self.half_window)
        # The array with h zero rows before and h - 1 after, so that every
        # frame's window is one contiguous slice; the array becomes a view of it.
        h, rows = self.half_window, self.array.shape[0]
        self._padded = np.zeros((rows + 2 * h - 1, *self.array.shape[1:]), dtype=np.float32)
        self._padded[h : h + rows] = self.array
        self.array = self._padded[h : h + rows]

    @property
    def aud_ave(self) -> np.ndarray:
        """The feature array under ``ave``'s name (`array`)."""
        return self.array

    @property
    def feature_mode(self) -> FeatureMode:
        """`mode` as a `FeatureMode` (always one after construction)."""
        return get_mode(self.mode)

    def __len__(self) -> int:
        """Number of video frames: the array's rows."""
        return int(self.array.shape[0])

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame's U-Net input, e.g. (32, 16, 16)."""
        return self.feature_mode.frame_shape(self.half_window)

    def window(self, index: int) -> np.ndarray:
        """Rows index - h .. index + h - 1 of the array, zero-padded: a read-only view."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range 0..{len(self) - 1}")
        view = self._padded[index : index + 2 * self.half_window]
        view.flags.writeable = False
        return view

    def frame(self, index: int) -> np.ndarray:
        """The U-Net audio input of video frame ``index``, e.g. float32 (32, 16, 16), a view."""
        return self.window(index).reshape(self.frame_shape)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame's U-Net input in order, one view at a time."""
        for index in range(len(self)):
            yield self.frame(index)

    def all_frames(self) -> np.ndarray:
        """Every frame at once: a new float32 (frames, *frame_shape) array."""
        return np.stack([self.frame(i) for i in range(len(self))])
