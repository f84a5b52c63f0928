"""`python bench/media_cpu` (or `python -m media_cpu` from bench/): the driver, or one of its helper programs."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: sys.path[0] is this one; the package and measure.py live one up
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from media_cpu.driver import main  # noqa: E402

raise SystemExit(main())
