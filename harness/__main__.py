"""``python -m harness``: the harness CLI."""

import sys

from harness.cli import main

sys.exit(main())
