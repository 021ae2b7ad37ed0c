"""The package version, read from the installed distribution's metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("synctalk-audio")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
