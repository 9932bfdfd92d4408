"""Cold first-call times: every numba kernel compiled from scratch (fresh NUMBA_CACHE_DIR).

Each case runs in a new interpreter whose numba cache directory is empty, so the time
includes compilation, as on the first call after ``pip install``; the same call is then
repeated in another fresh interpreter that reuses that cache (the second call after
install), and warm (the call again in the same process).  Usage::

    python benchmarks/cold_start.py            # the library calls
    python benchmarks/cold_start.py --run      # also time-to-first-figure of `mtcert run`
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CASES = {
    "import mtcert": ("import mtcert", "pass"),
    'adjust(p, "holm"), m = 1000': (
        "import numpy as np, mtcert; p = np.random.default_rng(0).random(1000)",
        'mtcert.adjust(p, "holm")',
    ),
    'adjust(p, "fdr_bh"), m = 1000': (
        "import numpy as np, mtcert; p = np.random.default_rng(0).random(1000)",
        'mtcert.adjust(p, "fdr_bh")',
    ),
    "binom_test(k, 100, 0.75), 1000 tests": (
        "import numpy as np, mtcert; k = np.arange(1000) % 101",
        "mtcert.binom_test(k, 100, 0.75)",
    ),
    "segcertify_hits 64x64 (holm)": (
        "import numpy as np, mtcert; rng = np.random.default_rng(0); "
        "h = rng.binomial(100, 0.9, (64, 64)); g = np.zeros((64, 64), int)",
        "mtcert.segcertify_hits(g, h, 100, tau=0.75, alpha=0.001)",
    ),
}

PROBE = """
import time
t0 = time.perf_counter()
{setup}
t1 = time.perf_counter()
{call}
t2 = time.perf_counter()
{call}
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def _run(code: str, cache: str) -> list[float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return [float(x) for x in out.stdout.split()]


def _first_figure(cache: str, out_dir: str) -> float:
    """Seconds from starting ``python -m mtcert run`` to its first figure file."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, MPLBACKEND="Agg")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mtcert", "run", "--out", out_dir],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None:
            for _root, _dirs, files in os.walk(out_dir):
                if any(f.endswith((".png", ".pdf", ".svg")) for f in files):
                    return time.perf_counter() - t0
            time.sleep(0.05)
        return float("nan")
    finally:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="also time `python -m mtcert run`")
    args = parser.parse_args(argv)
    print(f"\n{'case (seconds)':<40} {'setup':>7} {'cold':>7} {'cached':>7} {'warm':>8}")
    for name, (setup, call) in CASES.items():
        with tempfile.TemporaryDirectory() as cache:
            setup_s, cold, warm = _run(PROBE.format(setup=setup, call=call), cache)
            _, cached, _ = _run(PROBE.format(setup=setup, call=call), cache)
        print(f"{name:<40} {setup_s:>7.2f} {cold:>7.2f} {cached:>7.3f} {warm:>8.4f}")
    if args.run:
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
            print(
                f"{'mtcert run: first figure, cold cache':<40} {_first_figure(cache, out):>15.2f}"
            )


if __name__ == "__main__":
    main()
