"""`python -m autonet ...` runs the `autonet` command."""

import sys

from autonet.cli import main

sys.exit(main())
