"""`python -m salience ...` runs the CLI (editors use it when `salience` is not on PATH)."""

import sys

from salience.cli import main

sys.exit(main())
