"""``python -m mtcert``: see :mod:`mtcert.cli`."""

from mtcert.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
