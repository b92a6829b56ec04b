"""``python -m speechbrain_probe.listening serve|results ...``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
