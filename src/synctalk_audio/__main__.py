"""``python -m synctalk_audio`` runs the ``synctalk-audio`` command."""

import sys

from .cli import main

sys.exit(main())
