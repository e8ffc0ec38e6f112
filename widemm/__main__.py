"""``python -m widemm``: the command line (see ``widemm.cli``)."""

import sys

from widemm.cli import main

sys.exit(main())
