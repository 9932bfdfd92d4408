"""Run every ``compare_*.py`` script in this folder: ratios measured in one run."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    sys.path.insert(0, str(HERE))
    names = sys.argv[1:] or sorted(p.stem for p in HERE.glob("compare_*.py"))
    for name in names:
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
