"""``python -m flowyml_ray``: the command line."""

import sys

from .cli import main

sys.exit(main())
