"""``python -m kling_lab.cli``."""

import sys

from kling_lab.cli import main

sys.exit(main())
