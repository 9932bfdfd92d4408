"""Adaptive hierarchical certification: the hierarchy as data, the level rules, node hits,
the certificate's soundness by seeded Monte Carlo (and a mutant that breaks it), and CIG.

Monte Carlo checks follow tests/test_soundness.py: the one-sided Clopper–Pearson lower bound
at level DELTA = 1e-4 of the estimated FWER must not exceed alpha (false alarm <= 1e-4 if the
procedure is sound); the mutant's lower bound must exceed alpha.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from mtcert.certify import ABSTAIN, segcertify, segcertify_hits
from mtcert.certify.hierarchy import (
    CITYSCAPES,
    CITYSCAPES_CLASSES,
    ClassHierarchy,
    GapRule,
    ShareRule,
    certified_information_gain,
    hierarchical_segcertify,
    information_gain,
    node_hits,
    select_nodes,
)
from mtcert.certify.metrics import certified_accuracy
from mtcert.sim.hierarchy import flat_vs_hierarchical, hierarchical_oracle

DELTA = 1e-4

# cityscapesScripts labels.py: categoryId of train ids 0..18 (flat 1, construction 2,
# object 3, nature 4, sky 5, human 6, vehicle 7), typed in from the table, not from the module.
CITYSCAPES_CATEGORY_ID = [1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6, 6, 7, 7, 7, 7, 7, 7]
CITYSCAPES_CATEGORY_NAME = {
    1: "flat", 2: "construction", 3: "object", 4: "nature", 5: "sky", 6: "human", 7: "vehicle"
}  # fmt: skip


def toy():
    """a, b under AB; c, d under CD; e alone under E; AB and CD under TOP (3 levels)."""
    return ClassHierarchy(
        ["a", "b", "c", "d", "e"],
        {"TOP": [{"AB": ["a", "b"]}, {"CD": ["c", "d"]}], "E": ["e"]},
    )


# -- the hierarchy as data ------------------------------------------------------------------


def test_cityscapes_matches_cityscapesscripts():
    h = CITYSCAPES
    assert h.classes == CITYSCAPES_CLASSES and h.n_classes == 19
    assert h.n_levels == 2 and h.n_nodes == 26
    cat = h.level_map(1)
    for c in range(19):
        assert h.names[cat[c]] == CITYSCAPES_CATEGORY_NAME[CITYSCAPES_CATEGORY_ID[c]]
    # same partition: two classes share a node iff they share a categoryId
    same = cat[:, None] == cat[None, :]
    ids = np.asarray(CITYSCAPES_CATEGORY_ID)
    np.testing.assert_array_equal(same, ids[:, None] == ids[None, :])
    np.testing.assert_array_equal(h.level_map(0), np.arange(19))


def test_levels_membership_and_leaf_counts_of_an_uneven_tree():
    h = toy()
    assert h.names == ("a", "b", "c", "d", "e", "TOP", "AB", "CD", "E")
    np.testing.assert_array_equal(h.level, [0, 0, 0, 0, 0, 2, 1, 1, 1])
    np.testing.assert_array_equal(h.parent, [6, 6, 7, 7, 8, -1, 5, 5, -1])
    np.testing.assert_array_equal(h.level_map(1), [6, 6, 7, 7, 8])
    # e's parent E has level 1 <= 2, so e is E at level 2 as well
    np.testing.assert_array_equal(h.level_map(2), [5, 5, 5, 5, 8])
    np.testing.assert_array_equal(h.leaf_counts, [1, 1, 1, 1, 1, 4, 2, 2, 1])
    # brute force membership from the parent pointers
    for v in range(h.n_nodes):
        for c in range(h.n_classes):
            u, found = c, False
            while u >= 0:
                found |= u == v
                u = h.parent[u]
            assert h.membership[v, c] == found
    np.testing.assert_array_equal(
        h.contains([5, 6, 6, ABSTAIN, 8], [3, 1, 2, 0, 255]), [True, True, False, False, False]
    )
    with pytest.raises(ValueError, match="level"):
        h.level_map(3)


@pytest.mark.parametrize(
    ("classes", "tree", "error", "match"),
    [
        (["a", "b"], {"X": ["a", "b", "a"]}, ValueError, "appears twice"),
        (["a", "b"], {"X": ["a"], "Y": ["a", "b"]}, ValueError, "exactly one path"),
        (["a", "b"], {"X": ["a"]}, ValueError, "missing: \\['b'\\]"),
        (["a", "b"], {"X": ["a", "b", "zz"]}, ValueError, "'zz'.*not one of the fine"),
        (["a", "b"], {"X": ["a", "b"], "Y": []}, ValueError, "no children"),
        (["a", "a"], {"X": ["a"]}, ValueError, "unique"),
        ([], {}, ValueError, "empty"),
        (["a", ""], {"X": ["a", ""]}, ValueError, "non-empty strings"),
        (["a", "b"], {"X": ["a", {"X": ["b"]}]}, ValueError, "more than once"),
        (["a", "b"], {"X": ["a", 3]}, TypeError, "class names or mappings"),
        (["a", "b"], {"X": "ab"}, TypeError, "must be a list"),
        (["a", "b"], ["a", "b"], TypeError, "mapping"),
        ("ab", {"X": ["a", "b"]}, TypeError, "sequence"),
    ],
)
def test_invalid_hierarchies_are_refused(classes, tree, error, match):
    with pytest.raises(error, match=match):
        ClassHierarchy(classes, tree)


def test_json_round_trip_and_bad_files(tmp_path):
    h = toy()
    path = tmp_path / "h.json"
    path.write_text(h.to_json())
    back = ClassHierarchy.from_json(path)
    assert back.names == h.names
    np.testing.assert_array_equal(back.parent, h.parent)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        ClassHierarchy.from_json(tmp_path / "bad.json")
    (tmp_path / "keys.json").write_text(json.dumps({"classes": ["a"]}))
    with pytest.raises(ValueError, match="exactly the keys"):
        ClassHierarchy.from_json(tmp_path / "keys.json")
    with pytest.raises(ValueError, match="cannot read"):
        ClassHierarchy.from_json(tmp_path / "missing.json")
    (tmp_path / "type.json").write_text(json.dumps({"classes": ["a"], "tree": {"X": "a"}}))
    with pytest.raises(ValueError, match="must be a list"):
        ClassHierarchy.from_json(tmp_path / "type.json")


# -- stage 1 and 2: level rules and node hits ------------------------------------------------


def reference_nodes(counts0, h, levels):
    """Modal node at the given level, by explicit loops (ties to the lowest node id)."""
    out = []
    for row, lvl in zip(counts0, levels, strict=True):
        votes = {}
        for c, cnt in enumerate(row):
            v = int(h.level_map(lvl)[c])
            votes[v] = votes.get(v, 0) + int(cnt)
        best = max(votes.values())
        out.append(min(v for v, cnt in votes.items() if cnt == best))
    return np.array(out)


def test_gap_rule_against_loops():
    h = toy()
    rng = np.random.default_rng(0)
    counts0 = rng.multinomial(20, rng.dirichlet(np.ones(5) * 0.5, size=400))
    rule = GapRule((0.4, 0.1))
    levels, nodes = select_nodes(counts0, h, rule=rule)
    expected = []
    for row in counts0:
        top = sorted(row)[::-1]
        gap = (top[0] - top[1]) / row.sum()
        expected.append(2 if gap <= 0.1 else 1 if gap <= 0.4 else 0)
    np.testing.assert_array_equal(levels, expected)
    np.testing.assert_array_equal(nodes, reference_nodes(counts0, h, expected))
    assert len(set(levels.tolist())) == 3  # every branch exercised


def test_share_rule_against_loops():
    h = toy()
    rng = np.random.default_rng(1)
    counts0 = rng.multinomial(20, rng.dirichlet(np.ones(5) * 0.5, size=400)).reshape(20, 20, 5)
    levels, nodes = select_nodes(counts0, h, rule=ShareRule(0.8))
    flat0 = counts0.reshape(-1, 5)
    expected = []
    for row in flat0:
        for lvl in range(h.n_levels):
            share = (
                max(row[h.level_map(lvl) == v].sum() for v in set(h.level_map(lvl).tolist()))
                / row.sum()
            )
            if share >= 0.8 or lvl == h.n_levels - 1:
                expected.append(lvl)
                break
    assert levels.shape == (20, 20)
    np.testing.assert_array_equal(levels.ravel(), expected)
    np.testing.assert_array_equal(nodes.ravel(), reference_nodes(flat0, h, expected))
    assert len(set(expected)) == 3


def test_node_hits_against_loops():
    h = toy()
    rng = np.random.default_rng(2)
    counts = rng.multinomial(50, np.full(5, 0.2), size=(30,))
    nodes = rng.integers(0, h.n_nodes, size=30)
    expected = [
        sum(row[c] for c in range(5) if h.membership[v, c])
        for row, v in zip(counts, nodes, strict=True)
    ]
    np.testing.assert_array_equal(node_hits(counts, nodes, h), expected)
    with pytest.raises(ValueError, match="lie in"):
        node_hits(counts, np.full(30, 9), h)
    with pytest.raises(ValueError, match="component shape"):
        node_hits(counts, nodes[:3], h)


def test_rule_validation():
    with pytest.raises(ValueError, match="non-increasing"):
        GapRule((0.1, 0.3))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        GapRule((1.5,))
    with pytest.raises(ValueError, match="min_share"):
        ShareRule(-0.1)
    with pytest.raises(ValueError, match="only 1 level"):
        select_nodes([[3, 1] + [0] * 17], CITYSCAPES, rule=GapRule((0.5, 0.2)))
    with pytest.raises(TypeError, match="GapRule or a ShareRule"):
        select_nodes([[1, 0, 0, 0, 0]], toy(), rule=0.5)
    with pytest.raises(ValueError, match="5 fine classes"):
        select_nodes([[1, 0, 0]], toy(), rule=ShareRule(0.5))
    with pytest.raises(ValueError, match="at least one guessing sample"):
        select_nodes([[0, 0, 0, 0, 0]], toy(), rule=ShareRule(0.5))
    with pytest.raises(ValueError, match="non-negative"):
        select_nodes([[1, -1, 0, 0, 0]], toy(), rule=ShareRule(0.5))


# -- the certificate ------------------------------------------------------------------------


def test_hierarchical_equals_segcertify_on_nodes_and_flat_hierarchy_equals_segcertify():
    h = toy()
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(5) * 0.3, size=300)
    counts0 = np.stack([rng.multinomial(10, q) for q in p])
    counts = np.stack([rng.multinomial(100, q) for q in p])
    rule = ShareRule(0.8)
    cert = hierarchical_segcertify(counts0, counts, h, tau=0.75, alpha=0.01, rule=rule)
    levels, nodes = select_nodes(counts0, h, rule=rule)
    ref = segcertify_hits(nodes, node_hits(counts, nodes, h), 100, tau=0.75, alpha=0.01)
    np.testing.assert_array_equal(cert.labels, ref.labels)
    np.testing.assert_array_equal(cert.levels, levels)
    assert 0 < cert.abstain_rate < 1
    # in the flat hierarchy every node is a single class: same decisions as SEGCERTIFY
    flat = ClassHierarchy.flat(h.classes)
    fcert = hierarchical_segcertify(counts0, counts, flat, tau=0.75, alpha=0.01, rule=rule)
    plain = segcertify(counts0, counts, tau=0.75, alpha=0.01)
    single = np.argmax(flat.membership, axis=1)  # the one class of every node
    got = np.where(fcert.labels >= 0, single[np.maximum(fcert.labels, 0)], ABSTAIN)
    np.testing.assert_array_equal(got, plain.labels)
    assert round(cert.certified_radius(0.25), 4) == 0.1686


def test_hierarchical_certificate_errors():
    h = toy()
    c0 = np.array([[5, 5, 0, 0, 0]])
    with pytest.raises(ValueError, match="independent"):
        hierarchical_segcertify(c0, c0, h, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="same n"):
        hierarchical_segcertify(
            np.array([[5, 5, 0, 0, 0]] * 2), np.array([[50, 50, 0, 0, 0], [1, 0, 0, 0, 0]]),
            h, tau=0.75, alpha=0.01,
        )  # fmt: skip
    with pytest.raises(ValueError, match="tau"):
        hierarchical_segcertify(c0, c0.copy(), h, tau=0.4, alpha=0.01)
    with pytest.raises(ValueError, match="alpha"):
        hierarchical_segcertify(c0, c0.copy(), h, tau=0.75, alpha=1.5)
    with pytest.raises(TypeError, match="ClassHierarchy"):
        hierarchical_segcertify(c0, c0.copy(), "cityscapes", tau=0.75, alpha=0.01)


# -- soundness by Monte Carlo ------------------------------------------------------------------


def cp_lower(x, reps):
    return stats.beta.ppf(DELTA, x, reps - x + 1) if x > 0 else 0.0


def lattice_alpha(n, tau, target, scale=1):
    """alpha = scale * P(Bin(n, tau) >= j) for the j putting it nearest ``target`` (tight test)."""
    tab = stats.binom.sf(np.arange(n + 1) - 1, n, tau)
    j = int(np.argmin(np.abs(np.log(scale * tab[1:] / target)))) + 1
    return scale * tab[j]


def honest(counts0, counts, h, rule, **kw):
    return hierarchical_segcertify(counts0, counts, h, rule=rule, axis=-1, **kw)


def mutant(counts0, counts, h, rule, **kw):
    """Level and node chosen from the *testing* samples, hits counted on the same samples."""
    _, nodes = select_nodes(counts, h, rule=rule)
    return segcertify_hits(nodes, node_hits(counts, nodes, h), int(counts.sum(-1).flat[0]),
                           axis=-1, **kw)  # fmt: skip


def draw(rng, p, n0, n, reps):
    return rng.multinomial(n0, p, size=(reps, len(p))), rng.multinomial(n, p, size=(reps, len(p)))


def test_fwer_at_the_boundary_tau_075():
    """Every null sits exactly at p = tau at the node the rule tends to choose.

    Null type 1: a = tau, e = 1 - tau: a, AB and TOP all have p = tau.
    Null type 2: a = 0.45, b = 0.30, e = 0.25: AB = TOP = tau, chosen when the votes split.
    Alternatives (p ~ 1) go first in Holm, so the nulls meet the most permissive levels.
    Every node any rule can choose for a null has p <= tau: any certification is an error.
    """
    h, tau, n = toy(), 0.75, 100
    null1 = [tau, 0.0, 0.0, 0.0, 0.25]
    null2 = [0.45, 0.30, 0.0, 0.0, 0.25]
    alt = [0.0, 0.0, 0.0, 0.0, 1.0]
    m0 = 4
    p = np.array([null1, null2] * (m0 // 2) + [alt] * m0)
    alpha = lattice_alpha(n, tau, 0.05, scale=m0)
    rng = np.random.default_rng(20240224)
    reps = 40_000
    counts0, counts = draw(rng, p, 10, n, reps)
    for rule in (GapRule((0.5,)), ShareRule(0.875)):
        cert = honest(counts0, counts, h, rule, tau=tau, alpha=alpha)
        false = cert.labels[:, :m0] != ABSTAIN
        x = int(false.any(axis=1).sum())
        levels = cert.levels[:, :m0]
        assert len(np.unique(levels)) > 1  # the rule really moves between levels
        print(f"{rule}: FWER {x / reps:.4f} (CP low {cp_lower(x, reps):.4f}) alpha {alpha:.4f}")
        assert cp_lower(x, reps) <= alpha
        assert x / reps > alpha / 4  # the check is not vacuous: the boundary is reached


def test_fwer_tau_half_and_a_test_sample_mutant_that_fails():
    """At tau = 1/2 two disjoint nodes can both sit at the boundary: a = e = 1/2.

    Honest: the node is chosen from the guessing samples, so its hits are Bin(n, 1/2) and the
    FWER is alpha.  Mutant: choosing the level and node from the testing samples picks the
    larger of two Bin(n, 1/2) counts, about doubling the error.
    """
    h, tau, n = toy(), 0.5, 100
    p = np.array([[0.5, 0.0, 0.0, 0.0, 0.5]])
    alpha = lattice_alpha(n, tau, 0.05)
    rng = np.random.default_rng(7)
    reps = 40_000
    counts0, counts = draw(rng, p, 10, n, reps)
    rule = ShareRule(0.6)
    good = honest(counts0, counts, h, rule, tau=tau, alpha=alpha).labels[:, 0] != ABSTAIN
    bad = mutant(counts0, counts, h, rule, tau=tau, alpha=alpha).labels[:, 0] != ABSTAIN
    xg, xb = int(good.sum()), int(bad.sum())
    print(f"honest {xg / reps:.4f}, mutant {xb / reps:.4f}, alpha {alpha:.4f}")
    assert cp_lower(xg, reps) <= alpha
    assert cp_lower(xb, reps) > alpha


# -- CIG and power ---------------------------------------------------------------------------


def test_information_gain_closed_forms():
    h = toy()
    C = 5
    got = information_gain(np.arange(h.n_nodes), h, normalize=False)
    np.testing.assert_allclose(got, math.log(C) - np.log([1, 1, 1, 1, 1, 4, 2, 2, 1]))
    np.testing.assert_allclose(
        information_gain([5, ABSTAIN], h), [1 - math.log(4) / math.log(5), 0]
    )
    # correct AB for b, wrong CD for a, abstain, ignored pixel, correct fine d
    nodes = np.array([6, 7, ABSTAIN, 3, 3])
    target = np.array([1, 0, 2, 255, 3])
    want = ((1 - math.log(2) / math.log(5)) + 1.0) / 4
    assert certified_information_gain(nodes, target, h) == pytest.approx(want)
    raw = certified_information_gain(nodes, target, h, normalize=False)
    assert raw == pytest.approx(want * math.log(5))
    assert math.isnan(certified_information_gain([0], [255], h))
    with pytest.raises(ValueError, match="same shape"):
        certified_information_gain([0, 1], [0], h)
    with pytest.raises(ValueError, match="ABSTAIN"):
        information_gain([-2], h)


def test_flat_cig_equals_certified_accuracy():
    rng = np.random.default_rng(4)
    labels = rng.integers(-1, 19, size=(40, 50))
    target = rng.integers(0, 19, size=(40, 50))
    target[rng.random((40, 50)) < 0.1] = 255
    assert certified_information_gain(labels, target, CITYSCAPES) == pytest.approx(
        certified_accuracy(labels, target)
    )


def test_oracle_hierarchy_certifies_more_and_gains_more_information():
    h = CITYSCAPES
    oracle = hierarchical_oracle(h, np.tile(np.arange(19), 10), 0.2)
    np.testing.assert_allclose(oracle.probabilities.sum(1), 1.0)
    res = flat_vs_hierarchical(
        oracle, h, n0=10, n=100, tau=0.75, alpha=0.001, reps=20, rng=np.random.default_rng(5)
    )
    f, hh = res["flat"], res["hierarchical"]
    assert hh["abstain_rate"] < f["abstain_rate"] - 0.2
    assert hh["cig"] > f["cig"] + 0.1
    # at gamma = 0 every pixel is certain: both certify the fine class everywhere
    clean = flat_vs_hierarchical(
        hierarchical_oracle(h, np.arange(19), 0.0), h, n0=10, n=100, tau=0.75, alpha=0.001,
        reps=2, rng=np.random.default_rng(6),
    )  # fmt: skip
    assert clean["flat"] == clean["hierarchical"] == {
        "abstain_rate": 0.0, "certified_accuracy": 1.0, "cig": 1.0
    }  # fmt: skip


# -- random hierarchies -------------------------------------------------------------------------


def random_tree(draw_int, classes):
    """A random nested tree over ``classes``: split them into groups, recurse, sometimes stop."""
    counter = iter(range(10**6))

    def build(names, depth):
        if len(names) == 1 or depth >= 3 or draw_int(0, 2) == 0:
            return list(names)
        cut = draw_int(1, len(names) - 1)
        return [
            {f"n{next(counter)}": build(names[:cut], depth + 1)},
            {f"n{next(counter)}": build(names[cut:], depth + 1)},
        ]

    return {"root": build(list(classes), 0)}


def test_random_hierarchies_structural_invariants():
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.integers(1, 9), st.data())
    def check(C, data):
        classes = [f"c{i}" for i in range(C)]
        order = data.draw(st.permutations(classes))
        tree = random_tree(lambda a, b: data.draw(st.integers(a, b)), order)
        h = ClassHierarchy(classes, tree)
        assert sorted(h.leaf_counts[: h.n_classes]) == [1] * C
        assert h.membership[:C, :].sum() == C  # fine nodes hold only themselves
        for lvl in range(h.n_levels):
            m = h.level_map(lvl)
            for c in range(C):
                v = m[c]
                assert h.level[v] <= lvl and h.membership[v, c]
                up = h.parent[v]
                assert up < 0 or h.level[up] > lvl  # the highest such ancestor
        top = h.level_map(h.n_levels - 1)
        assert (h.parent[top] == -1).all()
        # hits are monotone along the path: an ancestor never has fewer
        counts = np.arange(1, C + 1)[None, :].repeat(h.n_nodes, 0)
        hits = node_hits(counts, np.arange(h.n_nodes), h)
        for v in range(h.n_nodes):
            if h.parent[v] >= 0:
                assert hits[h.parent[v]] >= hits[v]

    check()
