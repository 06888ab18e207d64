"""``python -m needlecheck``: the same command as the ``needlecheck`` console script."""

import sys

from needlecheck.cds_hooks.cli import main

sys.exit(main())
