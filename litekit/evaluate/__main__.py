"""``python -m litekit.evaluate``: see `litekit.evaluate.cli` (and ``--help``)."""

import sys

from litekit.evaluate.cli import main

sys.exit(main())
