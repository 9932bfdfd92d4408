"""``python -m mtcert``: help and defaults, one-line errors, outputs, the main job's plugins."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import mtcert
from mtcert import cli

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--reps", "2", "--workers", "1", "--no-progress"]


def _run(argv, capsys):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own exits (--help, --version, usage errors)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _python(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=600,
    )  # fmt: skip


# A meta-path finder that makes the named top-level packages unimportable.
BLOCKER = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class Blocker(MetaPathFinder):
        def __init__(self, names):
            self.names = set(names)

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker(sys.argv[1].split(",")))
    """
)


# -- help, defaults, version, program name ------------------------------------------------


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _help_entries(text: str) -> dict[str, str]:
    """Option string -> its whole (unwrapped) entry in ``--help`` output."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            blocks.append([line.strip()])
        elif blocks and blocks[-1] and line.startswith("   "):
            blocks[-1].append(line.strip())
        elif blocks:
            blocks.append([])  # a blank line or a section title ends an entry
    entries = {}
    for block in filter(None, blocks):
        header = block[0].split("  ")[0]
        for opt in re.findall(r"--?[\w-]+", header):
            entries[opt] = " ".join(block)
    return entries


def test_help_shows_a_default_for_every_option(capsys):
    parser = cli.build_parser()
    commands = dict(_subparsers(parser))
    assert set(commands) >= {"run", "demo", "power"}
    for name, sub in commands.items():
        code, out, _ = _run([name, "--help"], capsys)
        assert code == 0
        entries = _help_entries(out)
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            if not action.option_strings:  # a positional argument is required: no default
                assert action.help, f"{name} {action.dest}: no help text"
                continue
            opt = action.option_strings[0]
            assert action.help, f"{name} {opt}: no help text"
            assert opt in entries, f"{name} {opt}: not in --help"
            assert entries[opt].count("(default") == 1, f"{name} {opt}: {entries[opt]!r}"
            for choice in action.choices or ():  # valid choices listed
                assert str(choice) in entries[opt], f"{name} {opt}: {entries[opt]!r}"


def test_version_and_program_name(capsys):
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and out.strip() == f"python -m mtcert {mtcert.__version__}"
    assert cli.program_name("/usr/lib/python3/site-packages/mtcert/__main__.py") == (
        "python -m mtcert"
    )
    assert cli.program_name("/venv/bin/mtcert") == "mtcert"
    script = Path(sys.executable).with_name("mtcert")
    if script.exists():  # the console script of an installed checkout
        res = subprocess.run([str(script), "power", "--help"], capture_output=True, text=True)
        assert res.stdout.startswith("usage: mtcert power")


def test_commands_are_named_by_module():
    # the dispatcher imports no command module statically (each is loaded by name); the
    # import graph as a whole is checked in test_layers.py
    assert all(isinstance(m, str) and m.startswith("mtcert.cli.") for m in cli.COMMANDS.values())


# -- power: every misuse is one stderr line, exit 2, and no work is done ----------------


MISUSES = [
    ["--out", "{file}"],
    ["--out", "{file}/sub"],
    ["--out", "/proc/mtcert-cannot-create"],
    ["--name", "sub/dir/x"],
    ["--name", "../escape"],
    ["--N", "1000000000"],
    ["--n", "1000000000"],
    ["--n0", "1000000000"],
    ["--N", "1e20"],
    ["--gamma", "0:0.5:0.000000001"],
    ["--gamma", "0.1:0:0.01"],
    ["--gamma", "nan"],
    ["--k", "1"],
    ["--preset", "fig2c", "--N", "1000"],
    ["--preset", "fig2a", "--gamma", "0.05", "--n-bad", "1"],
    ["--method", "nope"],
    ["--gamma", "2"],
    ["--n-bad", "200"],
    ["--alpha", "1.5"],
    ["--tau", "0.3"],
    ["--format", "gif"],
    ["--reps", "0"],
    ["--workers", "0"],
    ["--seed", "-1"],
    ["--budget", "-1"],
    ["--preset", "fig9"],
    ["--bogus"],
]


@pytest.mark.parametrize("argv", MISUSES, ids=lambda a: " ".join(a))
def test_power_misuse_is_one_line_and_exit_2(argv, tmp_path, capsys, monkeypatch):
    from mtcert import power

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated although the command line was refused")

    monkeypatch.setattr(power, "run_grid", no_simulation)
    (tmp_path / "file").write_text("")
    argv = [a.format(file=tmp_path / "file") for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    code, _, err = _run(["power", *argv, "--no-progress"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], err
    assert "Traceback" not in err
    assert not list(tmp_path.rglob("*.csv"))
    assert not (tmp_path.parent / "escape.csv").exists()


def test_power_misuse_from_a_real_process(tmp_path):
    res = _python(
        "from mtcert.cli import main; raise SystemExit(main())",
        "power", "--N", "1e20", "--out", str(tmp_path),
    )  # fmt: skip
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "--N" in res.stderr


def test_power_names_never_overwrite(tmp_path, capsys):
    argv = ["power", "--gamma", "0,0.1", "--out", str(tmp_path), "--no-plot", *FAST]
    assert _run(argv, capsys)[0] == 0
    first = (tmp_path / "power.csv").read_bytes()
    code, out, _ = _run([*argv, "--seed", "1"], capsys)
    assert code == 0 and "power-2.csv" in out
    assert (tmp_path / "power.csv").read_bytes() == first  # untouched
    code, _, err = _run([*argv, "--name", "power"], capsys)
    assert code == 2 and "--overwrite" in err
    assert _run([*argv, "--name", "power", "--overwrite", "--seed", "1"], capsys)[0] == 0
    replaced, second = (
        pd.read_csv(tmp_path / f).drop(columns="runtime") for f in ("power.csv", "power-2.csv")
    )
    pd.testing.assert_frame_equal(replaced, second)


def test_power_adhoc_grid_figures_in_every_format(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code, out, _ = _run(
        ["power", "--method", "segcertify-holm,segcertify-bonferroni", "--gamma", "0:0.1:0.05",
         "--N", "100", "--out", str(tmp_path), "--name", "mine", "--errorbars",
         "--format", "png,pdf,svg", *FAST],
        capsys,
    )  # fmt: skip
    assert code == 0
    df = pd.read_csv(tmp_path / "mine.csv")
    assert sorted(df.gamma.unique()) == [0.0, 0.05, 0.1]
    assert {"method", "gamma", "N", "n_bad", "n0", "n", "alpha", "tau"} <= set(df)
    assert "k" not in df
    for ext in ("png", "pdf", "svg"):
        assert (tmp_path / f"mine.{ext}").stat().st_size > 1000
        assert str(tmp_path / f"mine.{ext}") in out


def test_power_preset(tmp_path, capsys):
    code, out, _ = _run(
        ["power", "--preset", "fig2c", "--out", str(tmp_path), "--no-plot", *FAST], capsys
    )
    assert code == 0 and "fig2c.csv" in out
    df = pd.read_csv(tmp_path / "fig2c.csv")
    assert set(df.method) == {"segcertify-holm", "segcertify-bonferroni"} and (df.reps == 2).all()
    assert not (tmp_path / "fig2c.png").exists()


def test_range_parsing_includes_stop_without_drift():
    from mtcert.cli.power import grid_budgets as budgets
    from mtcert.cli.power import grid_floats as floats
    from mtcert.cli.power import grid_ints as ints

    g = floats("0:0.1:0.001")
    assert len(g) == 101 and g[-1] == 0.1 and g[37] == 0.037
    assert ints("100,1e3,1e6") == [100, 1000, 1000000]
    assert budgets("0,1,0.01") == [0, 1, 0.01]


def test_missing_matplotlib_keeps_the_csv(tmp_path):
    res = _python(
        BLOCKER + "from mtcert.cli import main\n"
        "raise SystemExit(main(sys.argv[2:]))",
        "matplotlib", "power", "--gamma", "0,0.1", "--out", str(tmp_path), *FAST,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "power.csv").exists() and not (tmp_path / "power.png").exists()
    assert "figure skipped" in res.stderr and "mtcert[plot]" in res.stderr
    assert "Traceback" not in res.stderr


# -- the main job and its plugin jobs ---------------------------------------------------


@pytest.mark.slow  # the main job, in a process
def test_main_job_without_torch_or_plugin(tmp_path):
    # torch and the plugin are unimportable: the core still runs its part of the job.
    res = _python(
        BLOCKER + "from mtcert.cli import main\n"
        "code = main(sys.argv[2:])\n"
        "assert 'torch' not in sys.modules and 'mtcert_torch' not in sys.modules\n"
        "raise SystemExit(code)",
        "torch,mtcert_torch", "run", "--out", str(tmp_path), "--reps", "1",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for name in ("fig2a", "fig2b", "fig2c"):
        assert (tmp_path / f"{name}.csv").exists()
    assert "generalized-holm (k=5)" in res.stdout
    assert "Traceback" not in res.stderr


def test_plugin_jobs_run_from_entry_points(tmp_path, monkeypatch, capsys):
    import importlib.metadata

    from mtcert.cli import run as _main_job

    calls = []

    def fake_entry_points(group):
        assert group == _main_job.JOB_GROUP
        ok = importlib.metadata.EntryPoint("zz-ok", f"{__name__}:_recording_job", group)
        missing = importlib.metadata.EntryPoint("aa-missing", "no_such_module:job", group)
        failing = importlib.metadata.EntryPoint("zzz-fails", f"{__name__}:_failing_job", group)
        return [failing, ok, missing]

    monkeypatch.setattr(_main_job.importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(sys.modules[__name__], "_CALLS", calls)
    assert _main_job.run_plugin_jobs(tmp_path) == 3  # sorted by name; the last one fails
    assert calls == [tmp_path / "zz-ok"]
    out = capsys.readouterr().out
    assert "skipping the 'aa-missing' job" in out


_CALLS: list = []


def _recording_job(out: Path) -> int:
    _CALLS.append(out)
    return 0


def _failing_job(out: Path) -> int:
    return 3


def test_plugin_registers_its_job():
    import importlib.metadata

    eps = importlib.metadata.entry_points(group="mtcert.jobs")
    if not eps:
        pytest.skip("package metadata not installed (run `pip install -e .`)")
    assert {ep.name: ep.value for ep in eps}["segmentation"] == "mtcert_torch.runs.demo:run_demo"


# -- help with manners: a description, every default once, examples that parse ------------


@pytest.mark.parametrize(
    "command",
    [
        "",
        "run",
        "demo",
        "power",
        "recertify",
        "plan",
    ],
)
def test_help_has_description_single_defaults_and_examples(command, capsys):
    import re
    import shlex

    from mtcert.cli import build_parser

    argv = [command, "--help"] if command else ["--help"]
    with pytest.raises(SystemExit):
        build_parser("python -m mtcert").parse_args(argv)
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]
    assert description.strip() and not description.lstrip().startswith(("options", "positional"))
    assert "``" not in text
    assert not re.search(r"\(default: [^)]*\)\s*\(default:", text)
    assert "examples:" in text
    examples = text.split("examples:\n", 1)[1].splitlines()
    assert 2 <= len([e for e in examples if e.strip()]) <= 4
    for line in filter(str.strip, examples):
        words = shlex.split(line)
        assert words[:3] == ["python", "-m", "mtcert"]
        build_parser("python -m mtcert").parse_args(words[3:])  # every example parses


# -- recertify: where it writes, what it leaves out, why a setting abstains ---------------


def _image_counts(path, *, n=40, items=3, shape=(6, 5), p=0.98, seed=0):
    """A stored image run whose guesses are right and hit with probability ``p``."""
    import numpy as np

    from mtcert.stored.counts import CountsWriter

    rng = np.random.default_rng(seed)
    settings = dict(sigma=0.25, noise="gaussian", n0=10, n=n, seed=0, model="m", num_classes=4,
                    scales=[1.0])  # fmt: skip
    with CountsWriter(path, settings) as w:
        for i in range(items):
            target = rng.integers(0, 4, shape)
            w.add(f"img{i}", guess=target, hits=rng.binomial(n, p, shape), target=target)
    return path


def test_recertify_writes_next_to_the_counts_and_leaves_out_empty_columns(tmp_path, capsys):
    run = _image_counts(tmp_path / "run" / "counts.mtcounts")
    assert _run(["recertify", str(run)], capsys)[0] == 0
    assert (tmp_path / "run" / "recertify" / "recertify.csv").is_file()
    assert _run(["recertify", str(run.parent)], capsys)[0] == 0  # a folder: inside it
    out = (tmp_path / "run" / "recertify" / "recertify-2.md").read_text()
    header = out.splitlines()[0]
    assert "| acc |" in header and "inst_miou" not in header and "class_miou" not in header
    table = pd.read_csv(tmp_path / "run" / "recertify" / "recertify.csv")
    assert table["inst_miou"].isna().all()  # the CSV keeps every column
    code, _, err = _run(["recertify", str(tmp_path / "none.mtcounts")], capsys)
    assert code == 2 and "no counts file" in err and not (tmp_path / "recertify").exists()


def test_recertify_says_when_n_is_too_small_for_tau_at_alpha(tmp_path, capsys):
    """The floor is the closed form: Holm needs tau**n <= alpha / N, Hochberg's all-equal
    p-values need tau**n <= alpha (N = 30 pixels per image)."""
    import math

    run = _image_counts(tmp_path / "counts.mtcounts", n=40)
    argv = ["recertify", str(run), "--tau", "0.6,0.9", "--method", "holm,hochberg",
            "--out", str(tmp_path / "out")]  # fmt: skip
    code, out, _ = _run(argv, capsys)
    assert code == 0
    table = pd.read_csv(tmp_path / "out" / "recertify.csv")
    holm = math.ceil(math.log(0.001 / 30) / math.log(0.9))
    hochberg = math.ceil(math.log(0.001) / math.log(0.9))
    assert 40 < hochberg < holm
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2
    assert f"holm: every pixel abstains because n = 40 < {holm} needed" in notes[0]
    assert f"hochberg: every pixel abstains because n = 40 < {hochberg} needed" in notes[1]
    assert (table[table.tau == 0.9].abstain == 1).all()
    assert (table[table.tau == 0.6].abstain < 1).all()  # certifies: no note
    # at n above the floor a setting where everything abstains gets no note
    hard = _image_counts(tmp_path / "hard.mtcounts", n=200, p=0.5)
    code, out, _ = _run(["recertify", str(hard), "--tau", "0.9", "--out", str(tmp_path)], capsys)
    assert code == 0 and "note: " not in out
    assert (pd.read_csv(tmp_path / "recertify.csv").abstain == 1).all()


# -- plan: what was simulated, where the rate levels off -----------------------------------


def test_plan_ceiling_is_the_share_above_tau():
    """The rate's limit in n against scipy (a distribution) and a plain count (a family)."""
    import numpy as np
    from scipy import stats

    from mtcert.stored.planning import plan_samples

    plan = plan_samples(stats.beta(30, 1.5), N=100, tau=0.9, alpha=1e-3, method="bonferroni",
                        n=[50])  # fmt: skip
    assert plan.ceiling == pytest.approx(stats.beta(30, 1.5).sf(0.9), abs=1e-3)
    family = np.random.default_rng(0).uniform(0.5, 1.0, 300)
    plan = plan_samples(family, tau=0.8, alpha=1e-3, method="bonferroni", n=[50])
    assert plan.ceiling == pytest.approx(np.mean(family > 0.8), abs=1e-12)


def test_plan_says_when_the_target_is_above_the_plateau(tmp_path, capsys):
    argv = ["plan", "--beta", "30,1.5", "--N", "500", "--tau", "0.9", "--target", "0.95",
            "--n", "100,1000,3000", "--reps", "5", "--no-plot", "--out", str(tmp_path)]  # fmt: skip
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert "rates at n = 100, 1000, 3000 (3 grid points), simulated, 5 families of N = 500" in out
    line = next(x for x in out.splitlines() if x.startswith("smallest n reaching"))
    assert "not reached on this grid; at the largest n = 3000 the rate is" in line
    from scipy import stats

    ceiling = float(line.split("levels off at ")[1].split(",")[0])
    assert ceiling == pytest.approx(stats.beta(30, 1.5).sf(0.9), abs=2e-3)  # 0.905 < 0.95
    assert line.endswith("no n reaches the target (lower tau or the target)")


def test_plan_names_the_grid_point_below_a_grid_point_answer(tmp_path, capsys):
    """Every component has p_A = 1: Holm certifies all of a family exactly when
    tau**n <= alpha / N, so the answer is that closed-form n, put on the grid."""
    import math

    import numpy as np

    N, tau, alpha = 200, 0.75, 1e-3
    floor = math.ceil(math.log(alpha / N) / math.log(tau))
    profile = tmp_path / "p.txt"
    np.savetxt(profile, np.ones(N))
    argv = ["plan", "--profile", str(profile), "--tau", str(tau), "--alpha", str(alpha),
            "--target", "0.9", "--n", f"10,{floor},{floor + 40}", "--reps", "3", "--no-plot",
            "--out", str(tmp_path)]  # fmt: skip
    code, out, _ = _run(argv, capsys)
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("smallest n reaching"))
    assert line.startswith(
        f"smallest n reaching a certified rate of 0.9: {floor}, the smallest simulated grid "
        "point reaching it (n = 10 did not: rate 0); n = "
    )
    assert line.endswith("simulated in between did not either")
