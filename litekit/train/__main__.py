"""``python -m litekit.train``: see `litekit.train.cli` (and ``--help``)."""

import sys

from litekit.train.cli import main

sys.exit(main())
