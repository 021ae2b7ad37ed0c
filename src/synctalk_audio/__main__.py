"""``python -m synctalk_audio`` runs the ``synctalk-audio`` command."""

import sys

from .commands import main

sys.exit(main())
