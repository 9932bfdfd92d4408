"""Stored-counts files (mtcert.stored.counts): round trip, narrow dtypes, resumption, damage,
bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from mtcert.stored.counts import MAGIC, CountsWriter, StoredCounts, read_counts

SETTINGS = dict(sigma=0.25, noise="gaussian", n0=10, n=100, seed=0, model="m", num_classes=3)


def _item(rng, shape=(6, 5), n=100, c=3, ignore=255):
    guess = rng.integers(0, c, shape)
    hits = rng.integers(0, n + 1, shape)
    target = rng.integers(0, c, shape)
    target[0, 0] = ignore
    return guess, hits, target


def _write(path, items, settings=SETTINGS, **kw):
    with CountsWriter(path, settings, **kw) as w:
        for name, (g, h, t) in items.items():
            w.add(name, guess=g, hits=h, target=t)


def test_round_trip_sorted_lazy_and_narrow(tmp_path):
    rng = np.random.default_rng(1)
    items = {name: _item(rng) for name in ("c", "a", "b")}
    path = tmp_path / "run.mtcounts"
    _write(path, items)
    counts = read_counts(path)
    assert counts.names == ["a", "b", "c"]
    assert [it.name for it in counts] == ["a", "b", "c"]
    assert counts.settings == {**SETTINGS, "ignore_index": 255}
    assert counts.n == 100 and counts.num_classes == 3 and counts.ignore_index == 255
    assert counts.components() == 90 and len(counts) == 3 and "a" in counts
    for name, (g, h, t) in items.items():
        item = counts[name]
        np.testing.assert_array_equal(item.guess, g)
        np.testing.assert_array_equal(item.hits, h)
        np.testing.assert_array_equal(item.target, t)
        assert item.guess.dtype == item.hits.dtype == item.target.dtype == np.uint8
    with pytest.raises(KeyError, match="zzz"):
        counts["zzz"]


def test_wider_types_when_needed(tmp_path):
    settings = {**SETTINGS, "n": 1000, "num_classes": 300, "ignore_index": -1}
    guess = np.array([0, 299])
    hits = np.array([0, 1000])
    target = np.array([-1, 299])
    path = tmp_path / "w.mtcounts"
    _write(path, {"x": (guess, hits, target)}, settings)
    item = read_counts(path)["x"]
    assert item.guess.dtype == np.uint16 and item.hits.dtype == np.uint16
    assert item.target.dtype == np.int16
    np.testing.assert_array_equal(item.target, target)


def test_compression_beats_raw_int64(tmp_path):
    g = np.zeros((64, 64), int)
    h = np.full((64, 64), 100)
    path = tmp_path / "c.mtcounts"
    _write(path, {"x": (g, h, g)})
    assert path.stat().st_size < 64 * 64 * 3 * 8 / 50


def test_resume_appends_and_skips(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "r.mtcounts"
    _write(path, {"a": _item(rng)})
    with CountsWriter(path, SETTINGS) as w:
        assert w.stored_names == {"a"}
        with pytest.raises(ValueError, match="already holds an item named 'a'"):
            w.add("a", guess=[0], hits=[0], target=[0])
        w.add("b", guess=[1], hits=[2], target=[1])
    assert read_counts(path).names == ["a", "b"]


@pytest.mark.parametrize(
    "change", [{"sigma": 0.5}, {"n": 50}, {"model": "other"}, {"seed": 1}, {"scales": [1.0]}]
)
def test_resume_refuses_other_settings(tmp_path, change):
    path = tmp_path / "r.mtcounts"
    _write(path, {"a": ([0], [1], [0])})
    key = next(iter(change))
    with pytest.raises(ValueError, match=f"different settings.*{key}"):
        CountsWriter(path, {**SETTINGS, **change})


def test_torn_last_item_is_dropped_at_every_cut(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "t.mtcounts"
    _write(path, {"a": _item(rng)})
    with CountsWriter(path, SETTINGS) as w:
        w.add("b", guess=[1, 2], hits=[3, 4], target=[1, 1])
        w.close()  # in progress: a run killed here holds a and b, no closing frame
    with_b = path.read_bytes()
    good = with_b[: with_b.rindex(b"MTCF")]  # a, without its closing frame
    for cut in range(len(good) + 1, len(with_b)):  # every way a write of "b" can be cut short
        path.write_bytes(with_b[:cut])
        assert read_counts(path, partial=True).names == ["a"]
        with CountsWriter(path, SETTINGS) as w:
            assert w.stored_names == {"a"}
            w.close()
        assert path.read_bytes() == good
    # zeros after the last frame (a crash on some file systems) are a torn tail too
    path.write_bytes(good + bytes(100))
    assert read_counts(path, partial=True).names == ["a"]


def test_damage_in_the_middle_is_an_error(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "d.mtcounts"
    _write(path, {"a": _item(rng), "b": _item(rng)})
    data = bytearray(path.read_bytes())
    # the body of "a" ends right before the second item frame's marker
    second = data.index(b"MTCF", data.index(b"MTCF", len(MAGIC) + 4) + 4)
    data[second - 1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is damaged: its closing frame"):
        read_counts(path)  # the checksum of the finished file
    path.write_bytes(bytes(data[: data.rindex(b"MTCF")]))  # in progress: no checksum yet
    counts = read_counts(path, partial=True)  # headers are intact
    with pytest.raises(ValueError, match="'a' is damaged"):
        counts["a"]
    np.testing.assert_array_equal(counts["b"].hits.shape, (6, 5))
    w = CountsWriter(path, SETTINGS)
    with pytest.raises(ValueError, match="'a' is damaged"):
        w.finish()  # a damaged file is never sealed
    w.close()
    # a damaged header followed by another frame
    data = bytearray(path.read_bytes())
    data[second - 1] ^= 0xFF
    first = data.index(b"MTCF", len(MAGIC) + 4)
    data[first + 30] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged frame"):
        read_counts(path, partial=True)


def test_not_a_counts_file(tmp_path):
    p = tmp_path / "x.mtcounts"
    p.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an mtcert counts file"):
        read_counts(p)
    p.write_bytes(MAGIC + struct.pack("<4sIQII", b"MTCF", 5, 0, 0, 0) + b"{}")
    with pytest.raises(ValueError, match="settings frame is damaged"):
        read_counts(p)
    with pytest.raises(FileNotFoundError):
        read_counts(tmp_path / "missing.mtcounts")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        read_counts(tmp_path / "empty_dir")


def test_ranks_read_together(tmp_path):
    _write(tmp_path / "counts.mtcounts", {"a": ([0], [1], [0])})
    _write(tmp_path / "counts.rank1.mtcounts", {"b": ([1], [2], [1])})
    counts = read_counts(tmp_path)
    assert isinstance(counts, StoredCounts) and counts.names == ["a", "b"]
    assert read_counts(counts) is counts
    _write(tmp_path / "dup.mtcounts", {"a": ([0], [1], [0])})
    with pytest.raises(ValueError, match="stored twice"):
        read_counts(tmp_path)
    _write(tmp_path / "other" / "o.mtcounts", {"z": ([0], [1], [0])}, {**SETTINGS, "n": 7})
    with pytest.raises(ValueError, match="different run"):
        read_counts([tmp_path / "counts.mtcounts", tmp_path / "other" / "o.mtcounts"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(guess=[0.0], hits=[1], target=[0]), TypeError, "guess must be an integer"),
        (dict(guess=[0], hits=[101], target=[0]), ValueError, r"hits must lie in \[0, 100\]"),
        (dict(guess=[0], hits=[-1], target=[0]), ValueError, "hits must lie"),
        (dict(guess=[3], hits=[1], target=[0]), ValueError, r"guess must lie in \[0, 2\]"),
        (dict(guess=[-1], hits=[1], target=[0]), ValueError, "guess must lie"),
        (dict(guess=[0], hits=[1], target=[7]), ValueError, "target must lie"),
        (dict(guess=[0, 1], hits=[1], target=[0]), ValueError, "same shape"),
        (dict(guess=[], hits=[], target=[]), TypeError, "guess must be an integer"),
        (dict(guess=np.zeros(0, int), hits=np.zeros(0, int), target=np.zeros(0, int)),
         ValueError, "no components"),
    ],
)  # fmt: skip
def test_add_refuses_bad_items(tmp_path, kwargs, error, match):
    with CountsWriter(tmp_path / "b.mtcounts", SETTINGS) as w, pytest.raises(error, match=match):
        w.add("x", **kwargs)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({k: v for k, v in SETTINGS.items() if k != "model"}, "lack model"),
        ({**SETTINGS, "n": 0}, r"settings\['n'\]"),
        ({**SETTINGS, "sigma": -1.0}, "sigma"),
        ({**SETTINGS, "sigma": float("nan")}, "sigma"),
        ({**SETTINGS, "noise": 3}, "noise"),
        ({**SETTINGS, "seed": 1.5}, "seed"),
        ({**SETTINGS, "extra": object()}, "JSON"),
        ({**SETTINGS, "ignore_index": "x"}, "ignore_index"),
        ({**SETTINGS, "ignore_index": 2}, "is a class"),
    ],
)
def test_writer_refuses_bad_settings(tmp_path, settings, match):
    with pytest.raises(ValueError, match=match):
        CountsWriter(tmp_path / "s.mtcounts", settings)
    assert not (tmp_path / "s.mtcounts").exists()


def test_writer_misc(tmp_path):
    with pytest.raises(TypeError, match="mapping"):
        CountsWriter(tmp_path / "m.mtcounts", [1, 2])
    with pytest.raises(ValueError, match="compresslevel"):
        CountsWriter(tmp_path / "m.mtcounts", SETTINGS, compresslevel=11)
    w = CountsWriter(tmp_path / "m.mtcounts", {**SETTINGS, "n": np.int64(100)}, fsync=False)
    with pytest.raises(TypeError, match="name"):
        w.add("", guess=[0], hits=[0], target=[0])
    w.add("a", guess=[0], hits=[0], target=[0], meta={"category": "Airplane"})
    w.finish()
    with pytest.raises(ValueError, match="closed"):
        w.add("b", guess=[0], hits=[0], target=[0])
    assert read_counts(tmp_path / "m.mtcounts")["a"].meta == {"category": "Airplane"}
    assert "items=1, finished" in repr(w)
