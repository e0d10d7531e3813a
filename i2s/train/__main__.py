"""``python -m i2s.train``: see :mod:`i2s.train.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
