"""Cold first-call times: a fresh interpreter with an empty NUMBA_CACHE_DIR.

Each case runs in a new interpreter whose numba cache directory is empty, as on the
first call after ``pip install``, under two policies of :mod:`mtcert._jit`:

* ``auto`` (the default): a small call runs the kernels' Python source, so nothing
  compiles; columns *cold* (first call) and *2nd* (second call, same process);
* ``always`` (``MTCERT_JIT=always``, plain numba): the first call compiles every
  kernel it needs (*compile*), later calls run compiled (*warm*, the steady state
  that ``auto`` also reaches once a kernel is compiled).

The last case is too large to interpret: it compiles under both policies.  Usage::

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
    'adjust(p, "holm"), m = 100 000 (compiles)': (
        "import numpy as np, mtcert; p = np.random.default_rng(0).random(100_000) ** 4",
        'mtcert.adjust(p, "holm")',
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
for _ in range(5):
    {call}
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, (t4 - t3) / 5)
"""


def _run(code: str, cache: str, policy: str = "auto") -> list[float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, MTCERT_JIT=policy)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return [float(x) for x in out.stdout.split()]


def _first_figure(cache: str, out_dir: str, policy: str = "auto") -> float:
    """Seconds from starting ``python -m mtcert run`` to its first figure file."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, MPLBACKEND="Agg", MTCERT_JIT=policy)
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
    print(
        f"\n{'case (seconds)':<44} {'import':>6} {'cold':>7} {'2nd':>7} {'compile':>8} {'warm':>8}"
    )
    for name, (setup, call) in CASES.items():
        code = PROBE.format(setup=setup, call=call)
        with tempfile.TemporaryDirectory() as cache:
            setup_s, cold, second, _ = _run(code, cache)
        with tempfile.TemporaryDirectory() as cache:
            _, compile_s, _, warm = _run(code, cache, "always")
        print(
            f"{name:<44} {setup_s:>6.2f} {cold:>7.3f} {second:>7.3f} {compile_s:>8.2f} {warm:>8.4f}"
        )
    if args.run:
        for policy in ("auto", "always"):
            with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
                seconds = _first_figure(cache, out, policy)
            print(f"{'mtcert run: first figure, ' + policy:<44} {seconds:>15.2f}")


if __name__ == "__main__":
    main()
