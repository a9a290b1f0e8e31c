"""`python -m ddpg.cli …`, the same as `ddpg …`."""

import sys

from ddpg.cli import main

sys.exit(main())
