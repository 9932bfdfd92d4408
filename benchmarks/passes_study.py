"""Forward passes against certified rate: fixed n, per-image n from a pilot, sequential.

One run, the same alpha and tau for the three, on the oracle:

* **fig2a** — the paper's Fig. 2a setting: ``BinaryOracle(N=100, gamma, n_bad=1)``,
  n0 = n = 100, alpha = 0.001, tau = 0.75 (200 passes per image at fixed n).
* **cityscapes-like** — a mix of easy and hard images of N = 256 x 512 pixels
  (Cityscapes at scale 0.25), n0 = 10, alpha = 0.001, at the paper's Table 1
  settings (n = 100, tau = 0.75; and n = 500, tau = 0.95).  Two-class
  reduction (``MultiClassOracle`` rows ``(1 - p, p)``, truth 1); per pixel
  ``p = 1 - eps`` inside objects and ``p ~ U(0.4, 1)`` on object boundaries:

  ========  =====  ===================  =================
  image     share  boundary pixels      interior eps
  ========  =====  ===================  =================
  easy      70 %   3 %                  Beta(0.5, 500)
  hard      30 %   20 %                 Beta(0.5, 100)
  ========  =====  ===================  =================

  Calibrated so that fixed n = 100, tau = 0.75 abstains on about 7 % of the
  pixels, as the paper's Table 1 reports for HRNet on Cityscapes (scale
  0.25, sigma = 0.25).

Methods: (a) fixed n: SEGCERTIFY-Holm with n0 guessing and n testing samples;
(b) two-stage: a pilot of n1 = n0 samples guesses and plans n per image
(:func:`mtcert.stored.adaptive.two_stage_segcertify`, aiming at the rate the
planner predicts at the fixed n minus a tolerance), then n fresh samples;
(c) sequential: n0 guessing samples, then testing samples in looks
(:func:`mtcert.certify.sequential.sequential_segcertify`), mixture and
schedule bounds.  Passes per image = guessing/pilot + testing samples.
Intervals: mean +- 1.96 standard errors over the simulated images (their rate
differences to fixed n are paired: the same images, independent samples).

    python benchmarks/passes_study.py                # the full run (a few minutes)
    python benchmarks/passes_study.py --quick        # smaller images, fewer of them
    python benchmarks/passes_study.py --figure docs/figures/passes_vs_rate.png

The same comparison on a real model through the certify command (``--adaptive-n``):
``benchmarks/passes_demo.py``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from mtcert.certify.segmentation import segcertify_hits
from mtcert.certify.sequential import certification_floor, sequential_segcertify
from mtcert.sim.oracle import BinaryOracle, MultiClassOracle
from mtcert.stored.adaptive import two_stage_segcertify

ALPHA = 0.001
METHOD = "holm"


def cityscapes_like(rng, N, hard):
    """p_A of one image's pixels (see the module docstring)."""
    boundary = 0.20 if hard else 0.03
    eps = rng.beta(0.5, 100.0 if hard else 500.0, size=N)
    p = 1.0 - eps
    on_edge = rng.random(N) < boundary
    p[on_edge] = rng.uniform(0.4, 1.0, size=int(on_edge.sum()))
    return p


def floor_n(N, tau, alpha=ALPHA):
    """Fewest testing samples at which anything can certify: tau**n <= alpha / N."""
    return certification_floor(N, tau, alpha)


def one_image(oracle, rng, *, n0, n, tau, how, **kw):
    """(passes, certified rate) of one image under one method."""

    def sample(m, guess):
        return oracle.sample_counts(m, rng=rng)

    if how == "fixed":
        n = kw.get("n_fixed", n)
        guess, hits = oracle.sample_guess_hits(n0, n, rng=rng)
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=ALPHA, method=METHOD)
        return n0 + n, cert.certified_rate
    if how == "two-stage":
        res = two_stage_segcertify(
            oracle.sample_counts(n0, rng=rng), sample, tau=tau, alpha=ALPHA, method=METHOD,
            reference_n=n, **kw,
        )  # fmt: skip
        return res.passes, res.certified_rate
    guess = np.argmax(oracle.sample_counts(n0, rng=rng), axis=-1)
    cert = sequential_segcertify(guess, sample, tau=tau, alpha=ALPHA, method=METHOD, **kw)
    return n0 + cert.n, cert.certified_rate


def ci(x):
    x = np.asarray(x, float)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else float("nan")
    return x.mean(), half


def run_setting(name, images, *, n0, n, tau, configs, seed):
    """Every method of ``configs`` on the same list of images; one row per method."""
    rows, base = [], None
    for j, (label, how, kw) in enumerate(configs):
        rng = np.random.default_rng([seed, 1, j])  # each method its own samples ...
        t0 = time.perf_counter()
        out = np.array([
            # ... of the same images
            one_image(make(np.random.default_rng([seed, 0, i])), rng, n0=n0, n=n, tau=tau,
                      how=how, **kw)
            for i, make in enumerate(images)
        ])  # fmt: skip
        passes, rate = out[:, 0], out[:, 1]
        if base is None:
            base = rate
        (mp, hp), (mr, hr), (md, hd) = ci(passes), ci(rate), ci(rate - base)
        rows.append(
            dict(
                setting=name, method=label, passes=mp, passes_ci=hp, rate=mr, rate_ci=hr,
                rate_vs_fixed=md, diff_ci=hd, saving=(n0 + n) / mp,
                seconds=time.perf_counter() - t0,
            )
        )  # fmt: skip
    return rows


def mix_images(N, count, seed):
    kinds = np.random.default_rng(seed).random(count) < 0.3
    ones = np.ones(N, np.int64)

    def make_one(hard):
        def make(rng):
            p = cityscapes_like(rng, N, hard)
            return MultiClassOracle(np.column_stack([1.0 - p, p]), truth=ones)

        return make

    return [make_one(h) for h in kinds], kinds


def looks_for(N, tau, n_max, extra=0):
    """Eight looks, geometric from just above the floor (``extra`` more for a weaker bound)."""
    lo = floor_n(N, tau) + extra
    return tuple(sorted({*np.geomspace(lo, n_max, 8).round().astype(int).tolist(), n_max}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 2**14 pixels, 12 images")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--reps", type=int, default=200, help="oracle families for fig2a")
    ap.add_argument("--figure", default=None, help="write passes against rate here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    N = 2**14 if args.quick else 256 * 512
    count = 12 if args.quick else args.images
    rows = []

    # the paper's Fig. 2a setting: N = 100, one bad component, n0 = n = 100
    for gamma in (0.01, 0.05):
        imgs = [lambda rng, g=gamma: BinaryOracle(N=100, gamma=g, n_bad=1)] * args.reps
        cfg = [
            ("fixed n=100", "fixed", {}),
            ("two-stage", "two-stage", dict(n_grid=range(20, 101, 5), tolerance=0.01)),
            ("sequential mixture", "sequential", dict(looks=(50, 60, 70, 80, 100, 130))),
            ("sequential schedule", "sequential",
             dict(looks=(45, 55, 70, 85, 100), bound="schedule")),
        ]  # fmt: skip
        rows += run_setting(
            f"fig2a gamma={gamma}", imgs, n0=100, n=100, tau=0.75, configs=cfg, seed=args.seed
        )

    # Cityscapes-like mix at the paper's Table 1 settings
    imgs, kinds = mix_images(N, count, args.seed)
    print(f"cityscapes-like: {count} images of N = {N}, {int(kinds.sum())} hard")
    sweep = []
    for tau, n in ((0.75, 100), (0.95, 500), (0.75, 1000)):
        lo = floor_n(N, tau)
        budget, step = int(1.5 * n), max(5, n // 50)
        cfg = [
            (f"fixed n={n}", "fixed", {}),
            ("two-stage", "two-stage", dict(n_grid=range(lo, budget + 1, step), tolerance=0.01)),
            ("sequential mixture", "sequential",
             dict(looks=looks_for(N, tau, budget, 10), settle=0.01)),
            ("sequential schedule", "sequential",
             dict(looks=looks_for(N, tau, budget, 3), bound="schedule", settle=0.01)),
        ]  # fmt: skip
        name = f"mix tau={tau} n={n} (floor {lo})"
        rows += run_setting(name, imgs, n0=10, n=n, tau=tau, configs=cfg, seed=args.seed)
        if args.figure and (tau, n) == (0.75, 100):
            # the curves: fixed n swept, the two-stage tolerance and sequential settle swept
            cfg = [("fixed n=100", "fixed", {})]
            cfg += [(f"fixed n={m}", "fixed", dict(n_fixed=m)) for m in (70, 80, 90, 120, 150)]
            cfg += [
                (f"two-stage tol={t}", "two-stage",
                 dict(n_grid=range(lo, budget + 1, 5), tolerance=t))
                for t in (0.05, 0.02, 0.01, 0.003, 0.0)
            ]  # fmt: skip
            cfg += [
                (f"sequential settle={s}", "sequential",
                 dict(looks=looks_for(N, tau, budget, 10), settle=s))
                for s in (0.1, 0.05, 0.02, 0.01, 0.002)
            ]  # fmt: skip
            for r in run_setting("sweep", imgs, n0=10, n=n, tau=tau, configs=cfg, seed=args.seed):
                sweep.append(r)

    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        show = table.copy()
        for c in ("passes", "rate", "rate_vs_fixed"):
            err = {"passes": "passes_ci", "rate": "rate_ci", "rate_vs_fixed": "diff_ci"}[c]
            fmt = "{:.1f} ± {:.1f}" if c == "passes" else "{:.4f} ± {:.4f}"
            show[c] = [fmt.format(a, b) for a, b in zip(table[c], table[err], strict=True)]
        show["saving"] = table["saving"].map("{:.2f}x".format)
        show["seconds"] = table["seconds"].map("{:.0f}".format)
        print(show[["setting", "method", "passes", "rate", "rate_vs_fixed", "saving", "seconds"]]
              .to_string(index=False))  # fmt: skip
    if sweep:
        sweep = pd.DataFrame(sweep)
        target = float(sweep.loc[sweep["method"] == "fixed n=100", "rate"].iloc[0])
        print(
            f"\npasses per image at the certified rate of fixed n = 100 ({target:.4f}), tau = 0.75:"
        )
        for prefix in ("fixed", "two-stage", "sequential"):
            d = sweep[sweep["method"].str.startswith(prefix)].sort_values("rate")
            # "the same rate": within 0.001 of fixed n = 100 (its own noise is larger)
            goal = min(target, float(d["rate"].max()))
            if d["rate"].min() <= goal and goal >= target - 0.001:
                at = float(np.interp(goal, d["rate"], d["passes"]))
                print(f"  {prefix:<11} {at:6.1f} passes ({110 / at:.2f}x fewer than fixed n = 100)")
            else:
                print(
                    f"  {prefix:<11} does not reach it "
                    f"(rates {d['rate'].min():.4f}..{d['rate'].max():.4f})"
                )
        with pd.option_context("display.width", 200):
            print(
                sweep[["method", "passes", "passes_ci", "rate", "rate_ci"]]
                .round(4)
                .to_string(index=False)
            )
        if args.figure:
            plot(sweep, args.figure)


def plot(sweep, path):
    from mtcert.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sweep = sweep.drop_duplicates("method")
    for prefix, style in (
        ("fixed", dict(marker="o", ls="-")),
        ("two-stage", dict(marker="s", ls="--")),
        ("sequential", dict(marker="^", ls="-.")),
    ):
        d = sweep[sweep["method"].str.startswith(prefix)].sort_values("passes")
        ax.errorbar(d["passes"], d["rate"], xerr=d["passes_ci"], yerr=d["rate_ci"],
                    label=prefix, capsize=2, **style)  # fmt: skip
    ax.set_xlabel("forward passes per image (guessing/pilot + testing)")
    ax.set_ylabel("certified rate")
    ax.set_title("Cityscapes-like mix, N = 256 x 512, τ = 0.75, α = 0.001, Holm", fontsize="medium")
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    print("wrote", *save_figure(fig, path))


if __name__ == "__main__":
    main()
