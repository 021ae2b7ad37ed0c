"""What every exporter shares: its errors and the optional PyTorch import."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ExportCheckError",
    "ExportError",
    "MissingDependencyError",
    "first_line",
    "require_torch",
]


class ExportError(RuntimeError):
    """The checkpoint could not be exported to ONNX (no file was written)."""


class ExportCheckError(ExportError):
    """The exported model disagrees with PyTorch (no file was written)."""


class MissingDependencyError(RuntimeError, ImportError):
    """PyTorch (or another optional package) needed for exporting is not installed."""


def require_torch() -> Any:
    """The ``torch`` module; `MissingDependencyError` saying how to install it if absent."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            "exporting needs PyTorch, which is not installed: pip install"
            " 'synctalk-audio[export]' (or pip install torch)"
        ) from exc
    return torch


def first_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
