"""Every code block of README.md and docs/*.md runs as written, so the docs cannot rot.

How a page's fenced blocks are checked:

* ```` ```python ```` blocks run in order, in one namespace per page and in a temporary
  working directory; a block may not end in a bare expression with a value (run as a
  script it would show nothing: it must print what it shows).  A block whose first line
  starts with ``>>>`` is a doctest: the output it shows is checked too (``...`` matches
  anything, whitespace is normalised).
* ```` ```bash ```` blocks: every ``python -m mtcert ...`` / ``python -m mtcert_torch ...``
  command is parsed by that command line's own parser (a renamed option or a bad value
  fails); ``make TARGET`` must name a Makefile target; ``python FILE ...`` must name an
  existing file.  Preceded by ``<!-- run-with: ARGS -->`` the ``python -m`` commands are
  also run (in this process, in a temporary directory), with ``ARGS`` appended (small
  settings, e.g. ``--reps 2 --workers 1``).
* ``<!-- skip: REASON -->`` on the line before a block skips it, showing REASON (needs
  CUDA, a checkpoint, a data set).  ``<!-- needs: MODULE ... -->`` skips it only where one of
  those modules cannot be imported (``torch`` on an install without the ``[torch]`` extra).
  Blocks without a language are text (diagrams, layouts).

Every public module has its own API reference page, ``docs/reference/<module>.md`` with a
``::: module`` line, listed in the navigation of ``mkdocs.yml``.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import importlib
import importlib.util
import io
import pkgutil
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CLI_MODULES = {"mtcert": "mtcert.cli", "mtcert_torch": "mtcert_torch.cli"}

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"<!--\s*(skip|run-with|needs):\s*((?:(?!-->).)*?)\s*-->\s*\Z", re.DOTALL)


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None = None  # the reason
    run_with: list[str] | None = None  # extra arguments for a run of its commands

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        lang = match.group(1).lower()
        if lang not in ("python", "py", "bash", "sh", "shell"):
            continue
        block = Block(page, text.count("\n", 0, match.start()) + 1, lang, match.group(2))
        marker = _MARKER.search(text[: match.start()].rstrip() + "\n")
        if marker:
            kind, value = marker.groups()
            if kind == "skip":
                block.skip = value or "marked skip"
            elif kind == "needs":
                missing = [m for m in value.split() if importlib.util.find_spec(m) is None]
                if missing:
                    block.skip = f"needs {', '.join(missing)}"
            else:
                block.run_with = shlex.split(value)
        blocks.append(block)
    return blocks


BLOCKS = [b for page in PAGES for b in _blocks(page)]


@dataclass
class _PageRun:
    """One namespace and working directory shared by the python blocks of a page."""

    cwd: Path
    namespace: dict = field(default_factory=lambda: {"__name__": "__main__"})
    done: int = 0  # python blocks of the page run so far
    failed: str | None = None


_RUNS: dict[Path, _PageRun] = {}


def _exec_python(block: Block, namespace: dict) -> None:
    name = block.id
    if block.code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(
            block.code, namespace, name, str(block.page), block.line
        )
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        out = io.StringIO()
        result = doctest.DocTestRunner(optionflags=flags).run(
            test, out=out.write, clear_globs=False
        )
        if result.failed:
            pytest.fail(f"doctest in {name} failed:\n{out.getvalue()}", pytrace=False)
    else:
        # Line numbers in tracebacks point into the page.
        tree = ast.parse("\n" * block.line + block.code, str(block.page))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, str(block.page), "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), str(block.page), "eval"), namespace)
            if value is not None:  # a REPL would show it; a script run shows nothing
                pytest.fail(
                    f"{name} ends in a bare expression ({ast.unparse(last)[:60]}) whose value "
                    "a script run does not show: print it",
                    pytrace=False,
                )


def _run_python(block: Block, tmp_path_factory, monkeypatch) -> None:
    page = [b for b in BLOCKS if b.page == block.page and b.lang in ("python", "py")]
    index = page.index(block)
    run = _RUNS.get(block.page)
    if run is None:
        run = _RUNS[block.page] = _PageRun(tmp_path_factory.mktemp(block.page.stem))
    monkeypatch.chdir(run.cwd)
    # Run the earlier blocks first when this one was selected alone (pytest -k).
    for earlier in page[run.done : index + 1]:
        if run.failed:
            pytest.skip(f"an earlier block of this page failed ({run.failed})")
        run.done += 1
        if earlier.skip:
            if earlier is block:
                pytest.skip(block.skip)
            continue
        try:
            _exec_python(earlier, run.namespace)
        except BaseException:
            run.failed = earlier.id
            raise
    if run.done > index + 1 or (run.failed and run.failed != block.id):
        pytest.skip("already run")


def _commands(code: str) -> list[list[str]]:
    """The shell commands of a bash block, continuations joined, comments dropped."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def _parse_cli(package: str, argv: list[str]) -> None:
    parser = importlib.import_module(CLI_MODULES[package]).build_parser()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code:
                pytest.fail(
                    f"`python -m {package} {shlex.join(argv)}` is refused by its parser:\n"
                    f"{err.getvalue()}",
                    pytrace=False,
                )


def _run_cli(package: str, argv: list[str]) -> None:
    """Run a command in this process, where its imports are paid for once."""
    main = importlib.import_module(CLI_MODULES[package]).main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    assert not code, f"`python -m {package} {shlex.join(argv)}` failed:\n{out.getvalue()[-4000:]}"


def _check_bash(block: Block) -> None:
    for words in _commands(block.code):
        if words[0] in ("python", "python3") and words[1:2] == ["-m"]:
            package, argv = words[2], words[3:]
            if package not in CLI_MODULES:
                pytest.fail(f"{block.id}: unknown module {package!r}", pytrace=False)
            _parse_cli(package, argv)
            if block.run_with is not None:
                _run_cli(package, [*argv, *block.run_with])
        elif words[0] in ("python", "python3"):
            assert (ROOT / words[1]).is_file(), f"{block.id}: no file {words[1]}"
        elif words[0] == "make":
            for target in words[1:]:
                done = subprocess.run(
                    ["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True
                )
                assert done.returncode == 0, f"{block.id}: no make target {target!r}"
        else:
            pytest.fail(
                f"{block.id}: cannot check `{shlex.join(words)}`; "
                "mark the block <!-- skip: REASON -->",
                pytrace=False,
            )


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block(block: Block, tmp_path_factory, tmp_path, monkeypatch):
    if block.lang in ("python", "py"):
        _run_python(block, tmp_path_factory, monkeypatch)
    elif block.skip:
        pytest.skip(block.skip)
    else:
        monkeypatch.chdir(tmp_path)
        _check_bash(block)


def _public_modules(package: str) -> list[str]:
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def _nav_pages(node) -> list[str]:
    """Every page named in (a part of) the ``nav`` of mkdocs.yml."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return [page for item in node or [] for page in _nav_pages(item)]


@pytest.mark.parametrize("package", ["mtcert", "mtcert_torch"])
def test_every_public_module_has_a_reference_page_in_the_nav(package):
    yaml = pytest.importorskip("yaml")
    if package == "mtcert_torch":
        pytest.importorskip("torch")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = set(_nav_pages(config["nav"]))
    problems = []
    for name in _public_modules(package):
        page = f"reference/{name}.md"
        path = ROOT / "docs" / page
        if page not in nav:
            problems.append(f"{page} is not in the nav of mkdocs.yml")
        if not path.is_file() or not re.search(
            rf"^::: *{re.escape(name)}\s*$", path.read_text(encoding="utf-8"), re.MULTILINE
        ):
            problems.append(f"docs/{page} must exist with a `::: {name}` line")
    assert not problems, "\n".join(problems)


def test_collector_reads_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n<!-- skip: needs CUDA -->\n```python\nraise SystemExit(1)\n```\n\n"
        "<!-- run-with: --reps 2 -->\n\n```bash\npython -m mtcert demo \\\n  --m 10  # c\n```\n"
        "```\nplain text\n```\n"
        "<!-- needs: numpy no_such_module_here -->\n```python\nimport no_such_module_here\n```\n"
        "<!-- needs: numpy -->\n```python\nimport numpy\n```\n",
        encoding="utf-8",
    )
    first, second, third, fourth = _blocks(page)
    assert (third.skip, fourth.skip) == ("needs no_such_module_here", None)
    assert (first.lang, first.skip, first.line) == ("python", "needs CUDA", 3)
    assert (second.lang, second.skip, second.run_with) == ("bash", None, ["--reps", "2"])
    assert _commands(second.code) == [["python", "-m", "mtcert", "demo", "--m", "10"]]
