"""`python -m cdma ARGS`: the `cdma` command (cdma/_command.py)."""

import sys

from ._command import main

sys.exit(main())
