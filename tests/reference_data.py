"""The one way tests read stored reference numbers, and the guard that goes with it.

Goldens (tests/golden/), staged vectors (tests/vectors*/) and the like hold
numbers that NumPy, librosa, PyTorch or ONNX Runtime computed; comparing with
them depends on the CPU's last bits, so every test that does must be marked
``numeric``: `.ci/run` runs those tests again as other CPUs under QEMU
(docs/NUMERICS.md, "Tests on any CPU"). Reading through :func:`load_npz`,
:func:`load_npy` or :func:`reading` from a test that lacks the mark fails that test and says so,
so a new test of this kind cannot be left out of the emulated runs by
forgetting the mark.

tests/conftest.py tells this module which test is running (:func:`running`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

_current: list[pytest.Item] = []


@contextmanager
def running(item: pytest.Item) -> Iterator[None]:
    """Within this block, reads are on behalf of ``item``."""
    _current.append(item)
    try:
        yield
    finally:
        _current.pop()


def reading(path: str) -> None:
    """Fail the running test unless it is marked ``numeric``: it reads ``path``."""
    if _current and _current[-1].get_closest_marker("numeric") is None:
        pytest.fail(
            f"{_current[-1].nodeid} reads reference numbers ({os.path.relpath(path)}) but is"
            " not marked numeric: add @pytest.mark.numeric, so that it also runs on the"
            " emulated CPUs (tests/reference_data.py, docs/NUMERICS.md)",
            pytrace=False,
        )


def load_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` reference file ``path``, by name."""
    reading(path)
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def load_npy(path: str) -> np.ndarray:
    """The ``.npy`` reference array at ``path``."""
    reading(path)
    return np.load(path, allow_pickle=False)  # type: ignore[no-any-return]
