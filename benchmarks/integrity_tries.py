"""Re-run the hostile tries against counts files and the command lines; print the counts.

- **Truncation and flips**: a real counts file (``certify --save-counts`` on synthetic
  data; the core's writer where torch is missing) cut at every byte offset, and every
  byte flipped (``^ 0xFF``).  Each read (:func:`mtcert.stored.counts.read_counts`, then
  every item) is *complete* (all items, unchanged), *refused* (one ``ValueError``),
  *silently short* (fewer items, no error) or a *traceback* (any other exception).  The
  last two must be 0.
- **Crafted files**: the cases of ``tests/helpers/counts.py`` and a mutation of every
  settings and item-header entry (valid CRCs, a right closing frame), through
  ``recertify`` and ``plan --pilot``: accepted, refused in one line (exit 2), or a
  traceback (must be 0).
- **Misuse**: the issue's misuses of every command; each must end in one error line
  with exit 2 (or, where the right answer exists, exit 0), never a traceback.

Usage: ``PYTHONPATH=. python benchmarks/integrity_tries.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import zlib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from mtcert import cli as core_cli  # noqa: E402
from mtcert.stored.counts import CountsWriter, read_counts  # noqa: E402
from tests.helpers.counts import (  # noqa: E402
    CRAFTED,
    FULL,
    SETTINGS,
    craft,
    finished_run,
    item,
    write_crafted,
)

try:
    import torch

    from mtcert_torch.cli import main as torch_main
except ImportError:  # the core's tries still run
    torch = None


def run_cli(main, argv) -> str:
    """``one line``, ``ok``, ``several lines``, ``exit <code>`` or ``traceback``."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except SystemExit as exc:
        code = exc.code
    except Exception:  # the outcome counted here
        return "traceback"
    if code == 0:
        return "ok"
    if code == 2:
        lines = [line for line in err.getvalue().splitlines() if not line.startswith("note:")]
        return "one line" if len(lines) == 1 else "several lines"
    return f"exit {code}"


def read_outcome(path: Path, whole: dict) -> str:
    try:
        counts = read_counts(path)
        got = {it.name: (it.guess.tobytes(), it.hits.tobytes(), it.target.tobytes())
               for it in counts}  # fmt: skip
    except ValueError:
        return "refused"
    except Exception:  # another exception: a traceback for the user
        return "traceback"
    if got == whole:
        return "complete"
    return "silently short" if len(got) < len(whole) else "silently changed"


def real_counts(tmp: Path) -> Path:
    """A counts file of 12 items from the plugin (or the core's writer without torch)."""
    if torch is None:
        finished_run(tmp / "counts.mtcounts", k=12, shape=(24, 24))
        return tmp / "counts.mtcounts"
    from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset

    torch.manual_seed(0)
    torch.save(TinySegNet(3, 4).state_dict(), tmp / "tiny.pt")
    x, y = make_shapes(12, 24, seed=0)
    write_folder_dataset(tmp / "data", x, y)
    argv = _certify(tmp, tmp / "real", "--save-counts")
    assert run_cli(torch_main, argv) == "ok"
    return tmp / "real" / "counts.mtcounts"


def _certify(tmp: Path, out, *extra, data=None, checkpoint=None) -> list[str]:
    return ["certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
            '{"width": 4}', "--num-classes", "3", "--checkpoint",
            str(checkpoint or tmp / "tiny.pt"), "--data", str(data or tmp / "data"),
            "--sigma", "0.25", "--n0", "2", "--n", "4", "--alpha", "0.1", "--out", str(out),
            "--batch-size", "8", "--no-progress", "--figures", "0", *extra]  # fmt: skip


def damage_tries(path: Path, tmp: Path) -> None:
    full = path.read_bytes()
    whole = {it.name: (it.guess.tobytes(), it.hits.tobytes(), it.target.tobytes())
             for it in read_counts(path)}  # fmt: skip
    probe = tmp / "probe.mtcounts"
    flips = (full[:i] + bytes([full[i] ^ 0xFF]) + full[i + 1 :] for i in range(len(full)))
    for label, variants in (
        ("truncation", (full[:c] for c in range(len(full)))),
        ("byte flip", flips),
    ):
        tally: Counter = Counter()
        for data in variants:
            probe.write_bytes(data)
            tally[read_outcome(probe, whole)] += 1
        print(f"{label:<11} {len(full)} bytes, {len(whole)} items: {_fmt(tally)}")


def _mutations(tmp: Path) -> list[Path]:
    """Every crafted case, and each settings / item-header entry deleted or replaced."""
    out = [write_crafted(tmp / f"{c.replace(' ', '_')}.mtcounts", c) for c in CRAFTED]
    values = [None, "x", [], {}, -1, 0, 1.5, 10**13, True]

    def label(v) -> str:
        return "".join(ch if ch.isalnum() else "_" for ch in repr(v))[:20]

    for key in FULL:
        for v in ["<delete>", *values]:
            settings = {kk: vv for kk, vv in FULL.items() if kk != key}
            if v != "<delete>":
                settings[key] = v
            path = tmp / f"settings.{key}={label(v)}.mtcounts"
            out.append(craft(path, settings=settings, items=[item()]))
    header, body = item()
    for key in header:
        for v in ["<delete>", *values, [2**40, 2**40]]:
            h = {kk: vv for kk, vv in header.items() if kk != key}
            if v != "<delete>":
                h[key] = v
            out.append(craft(tmp / f"item.{key}={label(v)}.mtcounts", items=[(h, body)]))
    raw = np.zeros(3, np.uint8).tobytes()
    bodies = {"empty": b"", "x": b"x", "cut": zlib.compress(raw)[:-3],
              "long": zlib.compress(raw * 2), "short": zlib.compress(raw[:2]),
              "tail": zlib.compress(raw) + b"tail"}  # fmt: skip
    for name, b in bodies.items():
        out.append(craft(tmp / f"body.{name}.mtcounts", items=[(header, b)]))
    return out


def crafted_tries(tmp: Path) -> None:
    files = _mutations(tmp)
    for command in ("recertify", "plan"):
        tally: Counter = Counter()
        accepted = []
        for path in files:
            if command == "recertify":
                argv = ["recertify", str(path), "--out", str(tmp / "out-r")]
            else:
                argv = ["plan", "--pilot", str(path), "--n", "10,20", "--reps", "2", "--out",
                        str(tmp / "out-p"), "--no-plot"]  # fmt: skip
            got = run_cli(core_cli.main, argv)
            tally[got] += 1
            if got == "ok":
                accepted.append(path.stem)
        print(f"crafted     {command:<10} {len(files)} files: {_fmt(tally)}")
    print(f"            accepted (valid after all): {', '.join(accepted)}")


def _fmt(tally: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(tally.items()))


def misuse_tries(tmp: Path, real: Path) -> None:
    cut = tmp / "t.mtcounts"  # head -c: the first half
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    n0 = write_crafted(tmp / "n0.mtcounts", "n = 0")
    hits = write_crafted(tmp / "hits.mtcounts", "hits > n")
    ranks = tmp / "ranks"  # two rank files of one run
    rng = np.random.default_rng(0)
    for r in (0, 1):
        with CountsWriter(ranks / f"rank{r}.mtcounts", SETTINGS) as w:
            for i in range(3):
                w.add(f"r{r}i{i}", guess=np.ones(20, int), hits=rng.binomial(100, 0.9, 20),
                      target=np.ones(20, int))  # fmt: skip
    o = str(tmp / "o")
    core = {
        "recertify": [
            (["recertify", str(cut), "--out", o], "one line"),
            (["recertify", str(cut), "--out", o, "--partial"], "ok"),
            (["recertify", str(real), "--out", ""], "one line"),
            (["recertify", str(tmp / "missing.mtcounts"), "--out", o], "one line"),
            (["recertify", str(real), "--out", o, "--k", "0"], "one line"),
        ],
        "plan": [
            (["plan", "--beta", "30,1.5", "--N", "100000000000", "--out", o, "--no-plot"],
             "one line"),
            (["plan", "--pilot", str(n0), "--out", o, "--no-plot"], "one line"),
            (["plan", "--pilot", str(hits), "--out", o, "--no-plot"], "one line"),
            (["plan", "--pilot", str(ranks / "rank0.mtcounts"), str(ranks / "rank1.mtcounts"),
              "--n", "10,20", "--reps", "2", "--out", o, "--no-plot"], "ok"),
            (["plan", "--pilot", str(cut), "--out", o, "--no-plot"], "one line"),
            (["plan", "--beta", "30,1.5", "--N", "10", "--out", ""], "one line"),
        ],
        "demo": [
            (["demo", "--m", "1000000000000"], "one line"),
            (["demo", "--m", "0"], "one line"),
            (["demo", "--alpha", "2"], "one line"),
        ],
    }  # fmt: skip
    _report(core, core_cli.main)
    if torch is None:
        print("misuse      certify, certify-pointcloud, repair: skipped (torch is missing)")
        return
    _report(_torch_misuses(tmp), torch_main)


def _torch_misuses(tmp: Path) -> dict:
    from PIL import Image

    from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
    from tests.helpers.shapenet import CHAIR, cloud_args, shape, write_dataset

    big = tmp / "big"
    x, y = make_shapes(1, 8, seed=0)
    write_folder_dataset(big, x, y)
    Image.new("1", (20000, 20000)).save(big / "images" / "shape_0000.png")
    Image.new("L", (20000, 20000)).save(big / "labels" / "shape_0000.png")
    twins = tmp / "twins"
    write_folder_dataset(twins, x, y)
    Image.open(twins / "images" / "shape_0000.png").save(twins / "images" / "shape_0000.jpg")
    deep = tmp / "deep.json"
    deep.write_text('{"classes": ["a", "b", "c"], "tree": {"root": ' + '[{"n": ' * 600
                    + '["a", "b", "c"]' + "}]" * 600 + "}}")  # fmt: skip
    shapes = {(CHAIR, "c1"): shape(64, [12, 13], seed=1), (CHAIR, "c2"): shape(64, [12], seed=2)}
    cloud = write_dataset(tmp / "shapenet", shapes)
    twice = write_dataset(tmp / "shapenet2", shapes,
                          splits={"train": [], "val": [], "test": [(CHAIR, "c1")] * 2})  # fmt: skip
    victim = tmp / "victim"
    victim.write_text("precious")

    def folder(name, *, lock_link=False, config=None, records=None):
        out = tmp / name
        out.mkdir()
        if lock_link:
            (out / ".lock").symlink_to(victim)
        if config is not None:
            (out / "config.json").write_bytes(config)
        if records is not None:
            assert run_cli(torch_main, _certify(tmp, out, "--limit", "2")) == "ok"
            path = out / "per_image.jsonl"
            lines = path.read_bytes().splitlines(keepends=True)
            path.write_bytes(records(lines))
        return out

    def named(value):
        def edit(lines):
            rec = json.loads(lines[0])
            rec["name"] = value
            return json.dumps(rec).encode() + b"\n" + lines[1]

        return edit

    ckpt = tmp / "replaced.pt"
    ckpt.write_bytes((tmp / "tiny.pt").read_bytes())
    replaced = tmp / "replaced"
    assert run_cli(torch_main, _certify(tmp, replaced, "--limit", "1", checkpoint=ckpt)) == "ok"
    torch.save(TinySegNet(3, 4).state_dict(), ckpt)
    nl = folder("no-newline", records=lambda lines: lines[0] + lines[1].rstrip(b"\n"))
    bytes_out = folder("bytes", records=lambda lines: lines[0] + b"\xff\xfe\n" + lines[1])
    mism = tmp / "mismatch"
    with CountsWriter(mism / "counts.mtcounts", {**FULL, "sigma": 0.5}) as w:
        w.add("x", guess=[0], hits=[1], target=[0])
    c = tmp
    return {
        "certify": [
            (_certify(c, c / "m1", "--memory-budget", "inf"), "one line"),
            (_certify(c, c / "m2", "--memory-budget", "1e400"), "one line"),
            (_certify(c, c / "m3", "--device", "meta"), "one line"),
            (_certify(c, c / "m4", data=big), "one line"),
            (_certify(c, c / "m5", "--hierarchy", str(deep)), "one line"),
            ([*_certify(c, c / "m6")[:4], '{"width": -1}', *_certify(c, c / "m6")[5:]],
             "one line"),
            (_certify(c, folder("cfg1", config=b"[]")), "one line"),
            (_certify(c, folder("cfg2", config=b'"x"')), "one line"),
            (_certify(c, folder("cfg3", config=b"null")), "one line"),
            (_certify(c, folder("name-list", records=named(["x"]))), "one line"),
            (_certify(c, folder("name-int", records=named(7))), "one line"),
            (_certify(c, ""), "one line"),
            (_certify(c, folder("lock", lock_link=True)), "one line"),
            (_certify(c, replaced, checkpoint=ckpt), "one line"),
            (_certify(c, c / "m7", data=twins), "one line"),
            (_certify(c, nl), "ok"),
            (_certify(c, mism, "--save-counts"), "one line"),
        ],
        "certify-pointcloud": [
            (cloud_args(cloud, c / "p1", "--memory-budget", "inf"), "one line"),
            (cloud_args(cloud, c / "p2", "--npoints", "1000000000"), "one line"),
            ([*cloud_args(cloud, c / "p3")[:2], '{"npoints": [100000, 4]}',
              *cloud_args(cloud, c / "p3")[3:]], "one line"),
            (cloud_args(twice, c / "p4"), "one line"),
            (cloud_args(cloud, c / "p5", "--device", "meta"), "one line"),
        ],
        "repair": [
            (["repair", "--out", str(folder("lock2", lock_link=True))], "one line"),
            (["repair", "--out", str(bytes_out)], "ok"),
            (["repair", "--out", str(folder("name-list2", records=named(["x"])))], "ok"),
            (["repair", "--out", ""], "one line"),
            (["repair", "--out", str(c / "nowhere")], "one line"),
        ],
    }  # fmt: skip


def _report(tries: dict, main) -> None:
    for command, cases in tries.items():
        tally: Counter = Counter()
        wrong = []
        for argv, expected in cases:
            got = run_cli(main, argv)
            tally[got] += 1
            if got != expected:
                wrong.append(f"{' '.join(argv[1:3])} ...: {got}")
        print(f"misuse      {command:<18} {len(cases)} tries: {_fmt(tally)}; "
              f"unexpected {len(wrong)}{''.join(f'; {w}' for w in wrong)}")  # fmt: skip


def main() -> int:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        cwd = os.getcwd()
        os.chdir(tmp)  # an --out "" that slipped through would write here, not into the tree
        try:
            real = real_counts(tmp)
            damage_tries(real, tmp)
            crafted_tries(tmp)
            misuse_tries(tmp, real)
        finally:
            os.chdir(cwd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
