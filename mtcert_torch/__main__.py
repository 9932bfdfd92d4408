"""``python -m mtcert_torch``: see :mod:`mtcert_torch.cli`.

Imports the command line only.
"""

import sys

from mtcert_torch.cli import main

if __name__ == "__main__":
    sys.exit(main())
