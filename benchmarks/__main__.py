"""``python -m benchmarks``: see ``python -m benchmarks --help`` and benchmarks/README.md."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
