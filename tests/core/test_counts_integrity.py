"""A counts file knows when it is complete, and everything read back from it is checked.

Guards: a truncated or flipped file is never read as a shorter run (it is refused, or read
with ``partial=True`` and said so); a finished run stays finished when resumed; version-1
files stay readable; a crafted file (valid CRCs, nonsense inside) is one ``ValueError``,
never a traceback of another kind nor a wrong result such as a guess counted as class 0.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from mtcert.stored._frames import frame
from mtcert.stored.counts import MAGIC, CountsWriter, read_counts
from tests.helpers.counts import CRAFTED, FULL, SAYS, SETTINGS, finished_run, item, write_crafted


def _contents(counts):
    return {it.name: (it.guess.tolist(), it.hits.tolist(), it.target.tolist()) for it in counts}


def test_truncation_at_every_offset_is_refused_never_short(tmp_path):
    """A truncated file was read as a shorter run, without a word."""
    path = tmp_path / "run.mtcounts"
    full = finished_run(path)
    whole = _contents(read_counts(path))
    cut_path = tmp_path / "cut.mtcounts"
    said = set()
    for cut in range(len(full)):
        cut_path.write_bytes(full[:cut])
        with pytest.raises(ValueError) as e:
            read_counts(cut_path)
        said.add("incomplete" in str(e.value) or "not an mtcert" in str(e.value)
                 or "settings frame" in str(e.value))  # fmt: skip
        if cut > len(full) // 2:
            # what a partial read returns is a prefix of the run, each item intact
            got = _contents(read_counts(cut_path, partial=True))
            assert got == {k: whole[k] for k in got}
    assert said == {True}
    cut_path.write_bytes(full[: full.index(b"img09")])
    with pytest.raises(ValueError, match=r"incomplete: 9 of 12 items.*partial=True"):
        read_counts(cut_path)
    assert read_counts(cut_path, partial=True).incomplete[0].endswith("cut short)")


def test_every_single_byte_flip_is_refused(tmp_path):
    """Flips in the last frame were read silently with fewer items."""
    path = tmp_path / "run.mtcounts"
    full = finished_run(path, k=3)
    whole = _contents(read_counts(path))
    flipped = tmp_path / "flip.mtcounts"
    for pos in range(len(full)):
        data = bytearray(full)
        data[pos] ^= 0x5A
        flipped.write_bytes(bytes(data))
        try:
            got = _contents(read_counts(flipped))
        except ValueError:
            continue
        assert got == whole, pos  # pragma: no cover - a silent change would be the bug


def test_a_finished_run_resumed_staysfinished_run(tmp_path):
    """The writer marks a finished run; resuming it with nothing to do keeps it so."""
    path = tmp_path / "run.mtcounts"
    full = finished_run(path, k=2)
    with CountsWriter(path, SETTINGS) as w:
        assert w.finished and w.stored_names == {"img00", "img01"}
        w.expect(2)  # unchanged: nothing written
    assert path.read_bytes() == full
    w = CountsWriter(path, SETTINGS)
    w.expect(3)
    assert not w.finished
    w.close()  # a run cut short here is in progress, never "finished"
    with pytest.raises(ValueError, match="incomplete: 2 of 3 items"):
        read_counts(path)
    w = CountsWriter(path, SETTINGS)
    with pytest.raises(ValueError, match="2 of the 3 expected"):
        w.finish()
    w.add("img02", guess=[0], hits=[1], target=[0])
    w.finish()
    assert read_counts(path).names == ["img00", "img01", "img02"]
    # leaving a with block by an exception does not finish
    with pytest.raises(RuntimeError), CountsWriter(path, SETTINGS) as w:
        w.add("img03", guess=[0], hits=[1], target=[0])
        raise RuntimeError
    with pytest.raises(ValueError, match="incomplete: 4 of 3 items"):
        read_counts(path)


def test_version_1_files_are_read_with_partial_and_finished_on_resume(tmp_path):
    """Compatibility: a file of the previous version is refused with a clear message unless
    ``partial=True``; resuming and finishing it adds the closing frame."""
    path = tmp_path / "old.mtcounts"
    settings = {"kind": "settings", "format": "mtcert-counts", "version": 1, "settings": FULL}
    body = zlib.compress(np.array([[0, 1], [90, 80], [0, 2]], np.uint8).tobytes())
    one = {"kind": "item", "name": "a", "shape": [2], "meta": {},
            "dtypes": {"guess": "|u1", "hits": "|u1", "target": "|u1"}}  # fmt: skip
    path.write_bytes(MAGIC + frame(settings) + frame(one, body))
    with pytest.raises(ValueError, match="format version 1, which does not mark a finished"):
        read_counts(path)
    assert read_counts(path, partial=True)["a"].hits.tolist() == [90, 80]
    with CountsWriter(path, SETTINGS) as w:
        w.add("b", guess=[1], hits=[3], target=[1])
    assert read_counts(path).names == ["a", "b"]


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_files_are_one_value_error(tmp_path, case):
    """Crafted files (right CRCs, nonsense inside) ended in zlib.error, KeyError,
    AttributeError, OverflowError, MemoryError or a wrong mIoU (a guess >= num_classes
    read as class 0); each is now one ValueError saying why."""
    path = write_crafted(tmp_path / "c.mtcounts", case)
    with pytest.raises(ValueError, match=SAYS[case]):
        for _ in read_counts(path):
            pass


def test_writer_refuses_settings_a_reader_would_refuse(tmp_path):
    with pytest.raises(ValueError, match="too large"):
        CountsWriter(tmp_path / "big.mtcounts", {**SETTINGS, "n": 10**9})
    assert not (tmp_path / "big.mtcounts").exists()


def test_frames_after_the_closing_frame_are_refused(tmp_path):
    path = tmp_path / "run.mtcounts"
    full = finished_run(path, k=1)
    header, body = item(name="late")
    path.write_bytes(full + frame(header, body))
    with pytest.raises(ValueError, match="follows the closing frame"):
        read_counts(path, partial=True)
    path.write_bytes(full + b"\0" * 10)
    with pytest.raises(ValueError, match="stray bytes after its closing frame"):
        read_counts(path)
    assert read_counts(path, partial=True).names == ["img00"]
    assert json.loads(json.dumps(read_counts(path, partial=True).settings)) == FULL
