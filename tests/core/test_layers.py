"""The tree's layers: arrows only point down, no import circle, one concern per module.

Each module belongs to one layer (the table below, most specific prefix first);
a module may import modules of its own layer or of layers below it, never above.
Both eager and lazy (function-level) imports count.
"""

from __future__ import annotations

import pytest

from tests.helpers.imports import import_graph, imports_of, module_files

# (module prefix, rank): a module may import modules of equal or lower rank only.
LAYERS = (
    ("mtcert._kernels", 0),
    ("mtcert._tunables", 0),
    ("mtcert._threads", 0),
    ("mtcert._version", 0),
    ("mtcert._files", 0),
    ("mtcert._jit", 0),  # below the kernels: they are declared tiered where defined
    ("mtcert.stats", 2),
    ("mtcert.certify", 3),
    ("mtcert.sim", 4),
    ("mtcert.plotting", 1),
    ("mtcert.stored", 6),
    ("mtcert.cli", 8),
    ("mtcert.__main__", 9),
    ("mtcert", 7),  # the public face: above the library layers, below the command line
    ("mtcert_torch.noise", 10),
    ("mtcert_torch.sampler", 10),
    ("mtcert_torch.task", 10),
    ("mtcert_torch.metrics", 10),
    ("mtcert_torch.items", 10),
    ("mtcert_torch.data", 11),
    ("mtcert_torch.models", 12),
    ("mtcert_torch.tasks", 12),
    ("mtcert_torch.adaptive", 12),
    ("mtcert_torch.certifier", 13),
    ("mtcert_torch.settings", 13),
    ("mtcert_torch.smooth", 14),
    ("mtcert_torch.training", 14),
    ("mtcert_torch.attacks", 14),
    ("mtcert_torch.hierarchy", 14),
    ("mtcert_torch.runs", 15),
    ("mtcert_torch.cli", 17),
    ("mtcert_torch.__main__", 18),
    ("mtcert_torch", 16),
)

#: Modules allowed past the line limit (compiled kernels are kept whole for the compiler).
LONG_MODULES = ("mtcert._kernels",)
MAX_LINES = 700

GRAPH = import_graph()
FILES = module_files()


def rank(module: str) -> int:
    for prefix, r in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return r
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_arrows_point_down(module):
    up = sorted(m for m in GRAPH[module] if rank(m) > rank(module))
    assert not up, f"{module} (layer {rank(module)}) imports a higher layer: {up}"


def test_no_import_circle():
    # depth-first search for a back edge; report the circle found
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(d) :], d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        # a package's __init__ re-exports its submodules: edges from a package face to its
        # own members are the package's surface, not an arrow between concerns
        if m not in state:
            visit(m)


def test_core_never_imports_torch_or_the_plugin():
    for name, path in FILES.items():
        if name.split(".")[0] == "mtcert":
            bad = imports_of(path) & {"torch", "mtcert_torch", "torchvision"}
            assert not bad, f"{name} imports {sorted(bad)}"


def test_argparse_only_in_command_line_packages():
    for name, path in FILES.items():
        if "argparse" in imports_of(path):
            assert name.split(".")[1:2] == ["cli"], f"{name} imports argparse"


@pytest.mark.parametrize("module", sorted(FILES))
def test_modules_stay_short(module):
    if module.startswith(LONG_MODULES):
        return
    lines = len(FILES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (limit {MAX_LINES})"


def test_every_module_says_what_it_is_for():
    import ast

    for name, path in FILES.items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, f"{name} has no module docstring"
