"""Stored counts with per-item n (two-stage and sequential runs): written, read, refused.

Files of a fixed n stay exactly as before (version 2, no per-item n); a file whose
``sampling`` setting says the items have their own n is version 3, each item header
holds its n, and what cannot be re-decided with one fixed-n binomial test (sequential
counts; two-stage counts of several n) is refused by ``StoredCounts.n``.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from mtcert.stored._frames import MAGIC, frame, scan
from mtcert.stored.counts import CountsWriter, read_counts
from mtcert.stored.recertification import recertify
from tests.helpers.counts import FULL, SETTINGS, finished_run


def write(path, sampling, ns, seed=0):
    rng = np.random.default_rng(seed)
    settings = {**SETTINGS, "sampling": sampling, "n": 120}
    with CountsWriter(path, settings) as w:
        for i, n in enumerate(ns):
            w.add(f"img{i}", guess=rng.integers(0, 3, 6), hits=rng.integers(0, n + 1, 6),
                  target=rng.integers(0, 3, 6), n=n)  # fmt: skip
    return read_counts(path)


def test_fixed_files_are_written_as_before(tmp_path):
    finished_run(tmp_path / "a.mtcounts")
    found = scan(tmp_path / "a.mtcounts")
    assert found.version == 2 and "sampling" not in found.settings
    assert all("n" not in e.header for e in found.items)
    counts = read_counts(tmp_path / "a.mtcounts")
    assert counts.sampling == "fixed" and counts.n == 100
    assert set(counts.item_n.values()) == {100} and {item.n for item in counts} == {100}


def test_per_item_n_round_trip(tmp_path):
    counts = write(tmp_path / "t.mtcounts", "two-stage", [40, 70, 40])
    assert scan(tmp_path / "t.mtcounts").version == 3
    assert counts.item_n == {"img0": 40, "img1": 70, "img2": 40}
    assert [item.n for item in counts] == [40, 70, 40]
    with pytest.raises(ValueError, match="per-item n from 40 to 70"):
        counts.n  # noqa: B018
    with pytest.raises(ValueError, match="per-item n"):
        recertify(counts, tau=0.75, alpha=0.001)


def test_two_stage_counts_of_one_n_are_re_decided(tmp_path):
    counts = write(tmp_path / "u.mtcounts", "two-stage", [50, 50])
    assert counts.n == 50  # the hits are Bin(50, p) given the pilot: the fixed-n test holds
    table = recertify(counts, tau=0.75, alpha=0.001)
    assert int(table["items"].iloc[0]) == 2


def test_sequential_counts_are_never_re_decided_at_a_fixed_n(tmp_path):
    counts = write(tmp_path / "s.mtcounts", "sequential", [60, 60])
    with pytest.raises(ValueError, match="sequential stopping time"):
        counts.n  # noqa: B018
    with pytest.raises(ValueError, match="sequential stopping time"):
        recertify(counts, tau=0.75, alpha=0.001)


@pytest.mark.parametrize(
    ("sampling", "n", "hits", "says"),
    [
        ("two-stage", None, 3, "n .its testing samples. is required"),
        ("two-stage", 121, 3, "n must be"),
        ("two-stage", 10, 11, "hits must lie in \\[0, 10\\]"),
        (None, 50, 3, "in a file of fixed n = 120"),
    ],
)
def test_writer_refuses_a_wrong_item_n(tmp_path, sampling, n, hits, says):
    settings = {**SETTINGS, "n": 120}
    if sampling:
        settings["sampling"] = sampling
    with CountsWriter(tmp_path / "w.mtcounts", settings) as w:
        with pytest.raises(ValueError, match=says):
            w.add("x", guess=[0, 1], hits=[hits, 0], target=[0, 1], n=n)


def crafted(path, version, sampling, item_n=None):
    """A file written by hand (CRCs right): one item, its header with or without n."""
    settings = {**FULL, "sampling": sampling}
    head = {"kind": "settings", "format": "mtcert-counts", "version": version,
            "settings": settings}  # fmt: skip
    item = {"kind": "item", "name": "x", "shape": [2], "meta": {},
            "dtypes": {"guess": "|u1", "hits": "|u1", "target": "|u1"}}  # fmt: skip
    if item_n is not None:
        item["n"] = item_n
    body = zlib.compress(np.array([0, 1, 3, 0, 0, 1], np.uint8).tobytes())
    path.write_bytes(MAGIC + frame(head) + frame(item, body))
    return path


@pytest.mark.parametrize(
    ("version", "sampling", "item_n", "says"),
    [
        (3, "sequential", None, r"n \(its testing samples; sampling 'sequential'\)"),
        (3, "sequential", 101, "must be an integer in \\[1, 100\\]"),
        (2, "sequential", 30, "format version 2 does not fit its sampling 'sequential'"),
        (3, "fixed", None, "format version 3 does not fit its sampling 'fixed'"),
        (2, "fixed", 30, "an item n in a file of fixed n"),
        (3, "adaptive", 30, "settings\\['sampling'\\] must be one of"),
    ],
)
def test_reader_refuses_crafted_item_n(tmp_path, version, sampling, item_n, says):
    path = crafted(tmp_path / "c.mtcounts", version, sampling, item_n)
    with pytest.raises(ValueError, match=says):
        read_counts(path, partial=True)


def test_a_crafted_file_of_the_right_form_is_read(tmp_path):
    counts = read_counts(crafted(tmp_path / "ok.mtcounts", 3, "sequential", 3), partial=True)
    assert counts.item_n == {"x": 3} and counts["x"].n == 3
    assert json.loads(json.dumps(counts.settings))["sampling"] == "sequential"
