"""From encoder outputs to the U-Net's per-frame audio input (SyncTalk_2D).

``aud_ave`` is the encoder output with its first and last rows duplicated
(N + 2 rows), exactly what SyncTalk_2D saves for training. The U-Net input of
video frame i is rows i-8 .. i+7 of it, zero outside, reshaped C-order to
(32, 16, 16). `AudioFeatures` keeps only ``aud_ave`` and cuts each frame's
window on demand, so nothing of size frames x 8192 exists unless asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["CONTEXT_AFTER", "CONTEXT_BEFORE", "FRAME_SHAPES", "AudioFeatures"]

#: Rows of aud_ave before and after a frame's own row in its window.
CONTEXT_BEFORE = 8
CONTEXT_AFTER = 7
WINDOW_ROWS = CONTEXT_BEFORE + 1 + CONTEXT_AFTER  # 16

#: Per-mode reshape of the (16, feature_dim) window.
FRAME_SHAPES = {"ave": (32, 16, 16), "hubert": (32, 32, 32), "wenet": (256, 16, 32)}


@dataclasses.dataclass
class AudioFeatures:
    """The audio features of one clip.

    Attributes
    ----------
    aud_ave : numpy.ndarray
        float32 (N + 2, 512): encoder outputs with the first and last rows
        duplicated, as SyncTalk_2D's ``aud_ave.npy``.
    mode : str
        ``"ave"``.
    metadata : dict
        Input facts, counts, settings and timings (what metadata.json holds).

    Examples
    --------
    >>> import numpy as np
    >>> feats = AudioFeatures(np.ones((5, 512), np.float32))
    >>> len(feats), feats.frame(0).shape
    (5, (32, 16, 16))
    >>> float(feats.frame(0)[:16].sum())  # rows -8..-1 are zeros
    0.0
    """

    aud_ave: np.ndarray
    mode: str = "ave"
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        # aud_ave with 8 zero rows before and 7 after, so that every frame's
        # window is one contiguous slice; aud_ave itself becomes a view of it.
        rows = self.aud_ave.shape[0]
        self._padded = np.zeros((rows + WINDOW_ROWS - 1, self.aud_ave.shape[1]), dtype=np.float32)
        self._padded[CONTEXT_BEFORE : CONTEXT_BEFORE + rows] = self.aud_ave
        self.aud_ave = self._padded[CONTEXT_BEFORE : CONTEXT_BEFORE + rows]

    def __len__(self) -> int:
        """Number of video frames: N + 2."""
        return int(self.aud_ave.shape[0])

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame's U-Net input, e.g. (32, 16, 16)."""
        return FRAME_SHAPES[self.mode]

    def window(self, index: int) -> np.ndarray:
        """Rows index-8 .. index+7 of aud_ave, zero-padded: a (16, 512) read-only view."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range 0..{len(self) - 1}")
        view = self._padded[index : index + WINDOW_ROWS]
        view.flags.writeable = False
        return view

    def frame(self, index: int) -> np.ndarray:
        """The U-Net audio input of video frame ``index``: float32 (32, 16, 16), a view."""
        return self.window(index).reshape(self.frame_shape)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame's U-Net input in order, one view at a time."""
        for index in range(len(self)):
            yield self.frame(index)

    def all_frames(self) -> np.ndarray:
        """Every frame at once: a new float32 (N + 2, 32, 16, 16) array (N x 32 KiB)."""
        return np.stack([self.frame(i) for i in range(len(self))])
