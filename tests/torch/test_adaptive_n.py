"""Per-item testing n in the plugin (``adaptive_n``): soundness through the torch path.

The toy model labels a component 1 where its noisy value is positive; a
component whose clean value is 0 has P(label 1) = P(label 0) = 1/2 = tau under
Gaussian noise (by symmetry, up to noise exactly 0), so whatever the guess it is
a null exactly at the bound; a clean value of Phi^{-1}(0.995) gives an
alternative at 0.995.  Seeded Monte Carlo runs of the Certifier estimate the
per-image FWER; its one-sided Clopper-Pearson lower bound (level DELTA) must not
exceed alpha, and each mode's mutant must exceed it: two-stage with a sampler
that replays the pilot's copies as the first testing copies, sequential with the
fixed-n binomial p-value at the data-dependent stopping time.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

import mtcert.certify.sequential as seq
import mtcert_torch.adaptive as adaptive
from mtcert.stats.binomial import binom_test
from mtcert.stored.adaptive import ImagePlan
from mtcert.stored.counts import CountsWriter, read_counts
from mtcert_torch.adaptive import AdaptiveN
from mtcert_torch.certifier import Certifier
from mtcert_torch.runs.counts import counts_settings
from mtcert_torch.sampler import StreamingSampler
from mtcert_torch.settings import IMAGE_OPTIONS, Settings
from mtcert_torch.task import TensorTask

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

DELTA = 1e-4
TAU = 0.5
P_ALT = 0.995


def cp_bounds(x, reps, delta=DELTA):
    low = stats.beta.ppf(delta, x, reps - x + 1) if x > 0 else 0.0
    high = stats.beta.isf(delta, x + 1, reps - x) if x < reps else 1.0
    return low, high


def threshold_task():
    return TensorTask(lambda z: (z > 0).long(), num_classes=2)


# -- two stages: n from a fresh pilot ---------------------------------------------------------
M, N_PILOT = 8, 10
# Holm at level 8 * P(Bin(10, 1/2) >= 9): on the binomial lattice at n = 10 (exact there),
# nudged up a millionth so that a p-value computed a few ulp above the atom still rejects
# (the achieved level stays the atom's)
TWO_STAGE_ALPHA = M * float(stats.binom.sf(8, 10, TAU)) * (1 + 1e-6)


class ReplayPilotSampler(StreamingSampler):
    """The bug: the pilot's copies come back as the first testing copies."""

    def hits(self, image, guess, num):
        if not hasattr(self, "pilot"):
            self.pilot = super().hits(image, guess, num)
            return self.pilot
        if num == N_PILOT:
            return self.pilot
        return self.pilot + super().hits(image, guess, num - N_PILOT)


def fast_plan(pilot_hits, n_pilot, **kw):
    # the planner's place: any function of the pilot; fewer copies when it looks promising
    n = N_PILOT if int(np.max(pilot_hits)) >= 9 else 40
    return ImagePlan(n=n, target=1.0, predicted=float("nan"), reached=True, table=None)


def two_stage_fwer(reps, sampler):
    certifier = Certifier(threshold_task(), batch_size=64, sampler=sampler)
    false, ns = 0, []
    x = torch.zeros(M)
    for i in range(reps):
        certifier.manual_seed(i)
        cert = certifier.certify(
            x, sigma=1.0, tau=TAU, n0=5, n=40, alpha=TWO_STAGE_ALPHA,
            adaptive_n=f"two-stage:pilot={N_PILOT},min={N_PILOT},max=40,step=30",
        )  # fmt: skip
        false += bool((~cert.abstained).any())
        ns.append(cert.n)
    return false, ns


def test_two_stage_fwer_at_the_bound(monkeypatch):
    monkeypatch.setattr(adaptive, "plan_image_n", fast_plan)
    reps = 3000
    x, ns = two_stage_fwer(reps, StreamingSampler)
    low, high = cp_bounds(x, reps)
    print(f"two-stage: FWER {x / reps:.4f} CP [{low:.4f}, {high:.4f}] alpha {TWO_STAGE_ALPHA:.4f}")
    assert low <= TWO_STAGE_ALPHA
    assert set(ns) == {N_PILOT, 40}  # n does depend on the pilot


def test_two_stage_mutant_reusing_the_pilot_fails(monkeypatch):
    monkeypatch.setattr(adaptive, "plan_image_n", fast_plan)
    reps = 3000
    x, _ = two_stage_fwer(reps, ReplayPilotSampler)
    low, _ = cp_bounds(x, reps)
    print(f"two-stage mutant: FWER {x / reps:.4f}, CP lower {low:.4f}")
    assert low > TWO_STAGE_ALPHA


# -- sequential: anytime-valid p-values ---------------------------------------------------------
SEQ_ALPHA = 0.1
SEQ_LOOKS = "10/20/30/40/60/80/100"


def sequential_fwer(reps, bound):
    certifier = Certifier(threshold_task(), batch_size=100)
    x = torch.tensor([0.0, 0.0, *[float(stats.norm.ppf(P_ALT))] * 2])
    false, ns = 0, []
    for i in range(reps):
        certifier.manual_seed(i)
        cert = certifier.certify(
            x, sigma=1.0, tau=TAU, n0=5, n=100, alpha=SEQ_ALPHA,
            adaptive_n=f"sequential:looks={SEQ_LOOKS},bound={bound}",
        )  # fmt: skip
        false += bool((~cert.abstained[:2]).any())
        ns.append(cert.n)
    return false, ns


@pytest.mark.parametrize("bound", ["mixture", "schedule"])
def test_sequential_fwer_at_the_bound(bound):
    reps = 600
    x, ns = sequential_fwer(reps, bound)
    low, high = cp_bounds(x, reps)
    print(f"sequential {bound}: FWER {x / reps:.4f} CP [{low:.4f}, {high:.4f}], "
          f"mean n {np.mean(ns):.1f}")  # fmt: skip
    assert low <= SEQ_ALPHA
    assert np.mean(ns) < 100  # items stop early: the stopping time is data dependent


def test_sequential_mutant_fixed_n_pvalue_at_the_stop_fails(monkeypatch):
    def fixed_n(hits, n, tau, bound, looks, a, b):
        return np.asarray(binom_test(hits, n, tau), dtype=np.float64)

    monkeypatch.setattr(seq, "_look_pvalues", fixed_n)
    reps = 400
    x, _ = sequential_fwer(reps, "mixture")
    low, _ = cp_bounds(x, reps)
    print(f"sequential mutant: FWER {x / reps:.4f}, CP lower {low:.4f}")
    assert low > SEQ_ALPHA


# -- the plumbing -----------------------------------------------------------------------------
def test_every_testing_copy_is_fresh_and_counted():
    """n0 guessing, pilot and testing copies are separate draws: the sampler draws
    exactly n0 + pilot + n copies (the two-stage test never sees a pilot copy)."""
    x = torch.tensor([0.0, 3.0, 3.0, 3.0])
    for spec, pilot in (("two-stage:pilot=12,max=80", 12), ("sequential:max=80,looks=4", 0)):
        certifier = Certifier(threshold_task(), batch_size=50, seed=1)
        cert = certifier.certify(x, sigma=1.0, tau=0.75, n0=7, n=60, alpha=0.01, adaptive_n=spec)
        assert certifier.stats.samples == cert.passes == 7 + pilot + cert.n
        assert cert.n_pilot == pilot and cert.adaptive_n == spec and 1 <= cert.n <= 80
        assert int(cert.hits.max()) <= cert.n


def test_off_is_the_fixed_n_path():
    x = torch.tensor([0.0, 0.5, 3.0, -3.0])
    kw = dict(sigma=1.0, tau=0.75, n0=7, n=60, alpha=0.01)
    a = Certifier(threshold_task(), batch_size=16, seed=4).certify(x, **kw)
    b = Certifier(threshold_task(), batch_size=16, seed=4).certify(x, **kw, adaptive_n=None)
    np.testing.assert_array_equal(a.hits, b.hits)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.passes == b.passes == 67 and a.adaptive_n is None


def test_sequential_refuses_radii_and_dependence_sensitive_methods():
    c = Certifier(threshold_task(), batch_size=16, radii=True)
    kw = dict(sigma=1.0, tau=0.75, n0=7, n=60, alpha=0.01)
    with pytest.raises(ValueError, match="radii"):
        c.certify(torch.zeros(3), **kw, adaptive_n="sequential")
    with pytest.raises(ValueError, match="dependence"):
        c.certify(torch.zeros(3), **kw, method="hochberg", radii=False, adaptive_n="sequential")
    with pytest.raises(ValueError, match="dependence"):
        Settings(sigma=0.25, method="hommel", adaptive_n="sequential:max=200").validate()
    Settings(sigma=0.25, method="hommel", adaptive_n="two-stage:max=200").validate()


@pytest.mark.parametrize(
    ("text", "canonical", "budget"),
    [
        ("two-stage", "two-stage", 100),
        (" two-stage : max=200 , pilot=20 ", "two-stage:pilot=20,max=200", 200),
        ("two-stage:target=0.9,max=1000", "two-stage:max=1000,target=0.9", 1000),
        ("sequential:max=300,bound=schedule", "sequential:max=300,bound=schedule", 300),
        ("sequential:looks=80/120/200", "sequential:looks=80/120/200", 200),
    ],
)
def test_grammar(text, canonical, budget):
    spec = AdaptiveN.parse(text)
    assert spec.text == canonical and spec.budget(100) == budget
    assert AdaptiveN.parse(spec.text) == spec


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("fixed", "mode must be one of"),
        ("two-stage:looks=3", "two-stage takes"),
        ("sequential:pilot=3", "sequential takes"),
        ("two-stage:max", "key=value"),
        ("two-stage:max=0", "max must be a positive integer"),
        ("two-stage:max=ten", "max must be a positive integer"),
        ("two-stage:min=50,max=40", "min .50. exceeds max"),
        ("two-stage:target=1.5", "target must lie"),
        ("two-stage:target=0.9,tolerance=0.1", "target or tolerance"),
        ("two-stage:max=10,max=20", "given twice"),
        ("sequential:bound=exact", "bound must be one of"),
        ("sequential:looks=80/60", "looks must increase"),
        ("sequential:looks=80/120,max=200", "explicit looks"),
        ("sequential:settle=1", "settle must lie"),
        (f"sequential:max={2**53 + 1}", "max must be at most"),
    ],
)
def test_grammar_errors_name_the_option(text, says):
    with pytest.raises(ValueError, match=f"adaptive_n.*{says}"):
        AdaptiveN.parse(text)


def test_grid_and_schedule_start_at_the_floor():
    spec = AdaptiveN.parse("two-stage:max=200")
    grid = spec.grid(4096, 100, 0.75, 0.001)
    assert grid[0] == seq.certification_floor(4096, 0.75, 0.001) and grid[-1] == 200
    looks = AdaptiveN.parse("sequential:max=200,looks=5").schedule(4096, 100, 0.75, 0.001)
    assert looks[0] == seq.certification_floor(4096, 0.75, 0.001, bound="mixture")
    assert looks[-1] == 200 and len(looks) == 5


def test_cli_records_the_option_and_counts_have_per_item_n(tmp_path):
    opt = IMAGE_OPTIONS.resolve(
        dict(model="m", data="d", out="o", sigma=0.25, adaptive_n="sequential:max=120")
    )
    config = IMAGE_OPTIONS.config(opt)
    assert config["adaptive_n"] == "sequential:max=120"
    fixed = counts_settings(
        {**config, "adaptive_n": None}, noise="gaussian", num_classes=2, ignore_index=255
    )
    assert "adaptive_n" not in fixed and "sampling" not in fixed  # as before the option
    settings = counts_settings(config, noise="gaussian", num_classes=2, ignore_index=255)
    assert settings["sampling"] == "sequential" and settings["n"] == 120
    settings = {**settings, "model": "m", "seed": 0}
    path = tmp_path / "c.mtcounts"
    x = torch.tensor([0.0, 3.0, 3.0, 3.0])
    with CountsWriter(path, settings) as w:
        for i in range(3):
            cert = Certifier(threshold_task(), batch_size=50, seed=i).certify(
                x, sigma=1.0, tau=0.75, n0=7, n=100, alpha=0.01, adaptive_n="sequential:max=120"
            )
            w.add(f"x{i}", guess=cert.guess, hits=cert.hits, target=cert.guess, n=cert.n)
    counts = read_counts(path)
    assert counts.sampling == "sequential" and set(counts.item_n.values()) <= set(range(1, 121))
    assert [item.n for item in counts] == list(counts.item_n.values())
    with pytest.raises(ValueError, match="sequential stopping time"):
        counts.n  # noqa: B018 -- re-deciding with the fixed-n test would be the mutant
    assert json.loads(json.dumps(counts.settings)) == counts.settings


def test_cli_runs_record_passes_and_store_per_item_n(tmp_path, capsys):
    from mtcert.cli import main as core_main
    from mtcert_torch.cli import main
    from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset

    torch.manual_seed(0)
    torch.save(TinySegNet(3, 4).state_dict(), tmp_path / "tiny.pt")
    write_folder_dataset(tmp_path / "data", *make_shapes(3, 8, seed=0))

    def run(out, *extra):
        return main(["certify", "--model", "mtcert_torch.data.synthetic:TinySegNet",
                     "--model-kwargs", '{"width": 4}', "--num-classes", "3", "--checkpoint",
                     str(tmp_path / "tiny.pt"), "--data", str(tmp_path / "data"), "--sigma",
                     "0.25", "--n0", "4", "--n", "30", "--alpha", "0.1", "--out",
                     str(tmp_path / out), "--batch-size", "16", "--no-progress", "--figures",
                     "0", "--save-counts", *extra])  # fmt: skip

    assert run("two", "--adaptive-n", "two-stage:pilot=6,min=10,max=30,step=10") == 0
    per = (tmp_path / "two" / "per_image.csv").read_text().splitlines()
    assert {"passes", "adaptive_n"} <= set(per[0].split(",")) and len(per) == 4
    counts = read_counts(tmp_path / "two")
    assert counts.sampling == "two-stage" and counts.settings["n"] == 30
    records = [
        json.loads(r) for r in (tmp_path / "two" / "per_image.jsonl").read_text().splitlines()
    ]
    for r in records:  # passes = n0 + pilot + this image's n
        assert r["passes"] == 4 + 6 + counts.item_n[r["name"]]
    summary = (tmp_path / "two" / "summary.md").read_text()
    assert "passes min/q25/median/q75/max" in summary and "adaptive_n=two-stage" in summary

    assert run("seq", "--adaptive-n", "sequential:looks=10/20/30") == 0
    capsys.readouterr()
    assert core_main(["recertify", str(tmp_path / "seq"), "--tau", "0.75"]) != 0
    assert "sequential stopping time" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        run("bad", "--adaptive-n", "sequential:max=30", "--method", "hochberg")
    assert "dependence" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before any output
