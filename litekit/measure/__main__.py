"""``python -m litekit.measure``: see `litekit.measure.cli`."""

from litekit.measure.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
