"""``python -m embedded_engine``: see ``embedded_engine.cli``."""

import sys

from embedded_engine.cli import main

sys.exit(main())
