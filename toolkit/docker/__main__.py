"""`python -m toolkit.docker`: the emulated docker CLI."""

import sys

from toolkit.docker.cli import main

sys.exit(main(sys.argv[1:]))
