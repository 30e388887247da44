"""`python -m ohf`: the same as the `ohf` console script."""

import sys

from ohf.cli import main

sys.exit(main())
