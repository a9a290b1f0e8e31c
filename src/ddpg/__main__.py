import os
import sys

# `python -m` puts the current directory first on the import path; ddpg never imports from it (a run
# directory there may name a module beside it), as the `ddpg` command does not.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from ddpg.cli import main

raise SystemExit(main())
