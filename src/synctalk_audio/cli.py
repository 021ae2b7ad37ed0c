"""The ``synctalk-audio`` command under its historical name: see `synctalk_audio.commands`.

``python -m synctalk_audio.cli`` runs the command.
"""

from __future__ import annotations

import sys

from .commands import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
