"""``python -m gft``: see :mod:`gft.cli`."""

import sys

from gft.cli import main

if __name__ == "__main__":
    sys.exit(main())
