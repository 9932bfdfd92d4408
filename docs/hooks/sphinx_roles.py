"""Griffe extension for the API reference: Sphinx roles in docstrings become links.

The numpydoc docstrings use Sphinx roles (:func:`adjust`, :mod:`mtcert.sim.power`,
:class:`~mtcert.sim.oracle.BinaryOracle`), which Markdown would print verbatim. A role whose
target is a public object of the documented packages (resolved from the scope of the
object the docstring belongs to, as Sphinx does) becomes a cross-reference, which the
strict build checks; any other target (numpy, torch, private helpers) becomes a code span.

A paragraph after the last item of a Parameters (or Other Parameters, Attributes) section
belongs, in numpydoc, to a Notes section; griffe would read its first word as a parameter,
so the extension puts it under a "Notes" heading.  An item name written as an RST literal
on a line of its own loses its backticks (item names are shown as code anyway).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|obj|exc|const):`(~?)([\w.]+)`")


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                text = _plain_item_literals(_notes_after_items(obj.docstring.value))
                obj.docstring.value = _ROLE.sub(lambda m, o=obj: _replace(o, m, loader), text)


# An item name that is a whole RST literal (``"jointclass"``): the API page shows item
# names as code already, so the literal's backticks would be printed.
_LONE_SPAN = re.compile(r"^``([^`\n]+)``$", re.MULTILINE)
# "name : type ``(N,)``": the type is shown as code, literal backticks and all
_TYPED_ITEM = re.compile(r"^(\S[^\n]*? : )([^\n]*``[^\n]*)$", re.MULTILINE)
_ITEM_SECTIONS = ("Parameters", "Other Parameters", "Attributes")
# a numpydoc item line: "name", "a, b : type", "*args"
_ITEM = re.compile(r"^\*{0,2}\w+(\s*,\s*\*{0,2}\w+)*(\s*:.*)?$")


def _plain_item_literals(text: str) -> str:
    """Drop RST literal backticks where the page shows the text as code already."""
    text = _LONE_SPAN.sub(r"\1", text)
    return _TYPED_ITEM.sub(lambda m: m[1] + m[2].replace("``", ""), text)


def _notes_after_items(text: str) -> str:
    """Insert a Notes heading before free text that follows an item section."""
    lines = text.split("\n")
    out: list[str] = []
    section = None
    for i, line in enumerate(lines):
        heading = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if heading:
            section = line.strip()
        elif (
            section in _ITEM_SECTIONS
            and line.strip()
            and not line.startswith(" ")
            and i > 0
            and not lines[i - 1].strip()
            and not _ITEM.match(line.strip())
        ):
            out += ["Notes", "-----"]
            section = "Notes"
        out.append(line)
    return "\n".join(out)


def _objects(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


def _replace(obj: griffe.Object, match: re.Match, loader: griffe.GriffeLoader) -> str:
    tilde, target = match.groups()
    label = target.rsplit(".", 1)[-1] if tilde else target
    path = _resolve(obj, target, loader)
    if path is None or any(part.startswith("_") for part in path.split(".")):
        return f"`{label}`"
    return f"[`{label}`][{path}]"


def _resolve(obj: griffe.Object, target: str, loader: griffe.GriffeLoader) -> str | None:
    head, _, rest = target.partition(".")
    try:
        base = obj.resolve(head)
    except griffe.NameResolutionError:
        base = head
    try:
        found = loader.modules_collection[f"{base}.{rest}" if rest else base]
        return found.final_target.path if found.is_alias else found.path
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
