"""What every example shares: its command line (--quick, --out)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def arguments(doc: str | None, default_out: str) -> argparse.Namespace:
    """--quick (or AUTONET_QUICK=1 in the environment): a few seconds' version of the run, as the
    tests use; --out: the folder for the plots (made if missing)."""
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("AUTONET_QUICK") == "1",
        help="a short run that finishes in seconds (also: AUTONET_QUICK=1)",
    )
    parser.add_argument("--out", type=Path, default=Path(default_out), help="folder for plots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args
