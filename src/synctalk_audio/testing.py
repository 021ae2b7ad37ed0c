"""Seeded random SyncTalk_2D AudioEncoder weights, for tests and demos only.

The real ``audio_visual_encoder.pth`` is not redistributed with this project.
`random_encoder_state_dict` makes a stand-in with the exact upstream key
names and shapes, so everything downstream (export, ONNX Runtime, the
pipeline, the upstream PyTorch reference) can be exercised end to end. The
features it gives are meaningless for lip sync.

Two things make it a useful test model rather than a trivial one:

- conv weights are He-scaled (normal, std ``0.6 * sqrt(2 / fan_in)``, halved
  in residual blocks), so activations neither vanish nor explode through the
  13 blocks: every block's output has a standard deviation between 0.5 and
  1.6 and the features about 0.5 (0.47 to 0.73 for seeds 0-2);
- the BatchNorm running mean and variance, weight and bias are randomised per
  channel (variance spread over a factor of 16), so eval-mode BatchNorm is far
  from the identity and a wrong BN folding or a train-mode forward shows up as
  a large error.

This module imports without PyTorch; only `save_state_dict_pth` needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .export.ave import ENCODER_BLOCKS, encoder_state_shapes
from .outputs.directory import atomic_file

__all__ = ["random_encoder_state_dict", "save_state_dict_pth"]

#: Conv weight scale relative to He initialisation. With the random BatchNorm
#: below, 1.0 lets the activations grow ~1.2x per block (feature std ~14 after
#: 13 blocks); 0.6 keeps every block's output std between 0.5 and 1.6 and the
#: features' std near 0.5, max |feature| 3.6 to 6.2 (measured on speech and
#: uniform mel windows, seeds 0-2). PyTorch's float32 rounding error grows with
#: the feature magnitude (~1.3e-6 x max |feature|), so a bigger scale would make
#: 1e-5 comparisons with the upstream float32 path fail on rounding alone.
WEIGHT_GAIN = 0.6
#: Extra conv weight scale in residual blocks; keeps the sum
#: ``BN(conv(x)) + x`` from doubling the variance at every such block.
RESIDUAL_GAIN = 0.5


def random_encoder_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
    """Random AudioEncoder weights with the upstream key names, as NumPy arrays.

    Parameters
    ----------
    seed : int, optional
        Seed of the NumPy PCG64 generator; the same seed gives the same
        arrays on every platform.

    Returns
    -------
    dict[str, numpy.ndarray]
        The 91 keys of SyncTalk_2D's ``audio_visual_encoder.pth`` WITHOUT the
        ``audio_encoder.`` prefix (``0.conv_block.0.weight``, ...), in module
        order: float32 conv weights (cout, cin, k, k) and biases (cout,),
        float32 BatchNorm ``weight``, ``bias``, ``running_mean``,
        ``running_var`` (cout,), and int64 0-d ``num_batches_tracked``.

    Notes
    -----
    Per block with fan-in ``f = cin·k·k``: conv weight ~ N(0, 2/f) times
    `WEIGHT_GAIN` (and `RESIDUAL_GAIN` in residual blocks), conv bias ~ U(±1/√f) (PyTorch's
    default); BatchNorm weight ~ U(0.5, 1.5), bias ~ N(0, 0.2²),
    running_mean ~ N(0, 0.3²), running_var = 2^U(-2, 2) (0.25 to 4),
    num_batches_tracked ~ U{1000, ..., 99999}.

    Examples
    --------
    >>> state = random_encoder_state_dict(seed=0)
    >>> len(state), state["0.conv_block.0.weight"].shape
    (91, (32, 1, 3, 3))
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    state: dict[str, np.ndarray] = {}
    for index, (cin, cout, kernel, _stride, _padding, residual) in enumerate(ENCODER_BLOCKS):
        fan_in = cin * kernel * kernel
        gain = RESIDUAL_GAIN if residual else 1.0
        conv, bn = f"{index}.conv_block.0", f"{index}.conv_block.1"
        scale = gain * WEIGHT_GAIN * np.sqrt(2.0 / fan_in)
        state[f"{conv}.weight"] = (rng.standard_normal((cout, cin, kernel, kernel)) * scale).astype(
            np.float32
        )
        bound = 1.0 / np.sqrt(fan_in)
        state[f"{conv}.bias"] = rng.uniform(-bound, bound, cout).astype(np.float32)
        state[f"{bn}.weight"] = rng.uniform(0.5, 1.5, cout).astype(np.float32)
        state[f"{bn}.bias"] = (rng.standard_normal(cout) * 0.2).astype(np.float32)
        state[f"{bn}.running_mean"] = (rng.standard_normal(cout) * 0.3).astype(np.float32)
        state[f"{bn}.running_var"] = np.exp2(rng.uniform(-2.0, 2.0, cout)).astype(np.float32)
        state[f"{bn}.num_batches_tracked"] = np.array(rng.integers(1000, 100000), dtype=np.int64)
    expected = encoder_state_shapes()
    assert list(state) == list(expected), "key order differs from the network"
    for key, (shape, dtype) in expected.items():
        assert state[key].shape == shape and state[key].dtype == np.dtype(dtype), key
    return state


def save_state_dict_pth(state: Mapping[str, Any], path: str | os.PathLike[str]) -> str:
    """Write a state dict with ``torch.save``, as SyncTalk_2D ships its checkpoint.

    Keys are written as given (pass `random_encoder_state_dict` output for the
    upstream format, without the ``audio_encoder.`` prefix). The file is
    written to a temporary name beside ``path`` and renamed into place.

    Parameters
    ----------
    state : Mapping[str, Any]
        Names to NumPy arrays or tensors.
    path : str or os.PathLike
        The ``.pth`` file to write; its directory must exist.

    Returns
    -------
    str
        The absolute path written.

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "save_state_dict_pth needs PyTorch: pip install 'synctalk-audio[export]'"
        ) from exc
    tensors = {
        str(key): value if isinstance(value, torch.Tensor) else torch.from_numpy(np.array(value))
        for key, value in state.items()
    }
    final = os.path.abspath(os.fspath(path))
    with atomic_file(final) as tmp, open(tmp, "wb") as f:
        # Through a file object: given a path, torch.save names the archive's
        # root folder after it (the random temporary name), and the bytes differ.
        torch.save(tensors, f)
    return final
