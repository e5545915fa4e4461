"""``python -m allsmi``: the same as the ``allsmi`` command."""

import sys

from allsmi.app.cli import main

sys.exit(main())
