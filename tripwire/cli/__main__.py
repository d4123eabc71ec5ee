"""``python -m tripwire.cli``."""

import sys

from tripwire.cli import main

sys.exit(main())
