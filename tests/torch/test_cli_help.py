"""``python -m mtcert_torch --help`` and every command's: a description line, every default
shown once, valid choices listed, examples that parse, no reStructuredText markup."""

from __future__ import annotations

import re
import shlex

import pytest

from mtcert_torch.cli import COMMANDS, build_parser
from mtcert_torch.settings import CLOUD_OPTIONS, IMAGE_OPTIONS

pytestmark = pytest.mark.torch
PROG = "python -m mtcert_torch"


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        build_parser(PROG).parse_args([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _entries(text: str) -> dict[str, str]:
    """Option flag -> its whole entry (wrapped lines joined) in ``--help`` output."""
    entries, flag = {}, None
    for line in text.split("\nexamples:\n")[0].splitlines():
        match = re.match(r"^  (-[-\w]+)", line)
        if match:
            flag = match.group(1)
            entries[flag] = line.strip()
        elif flag and line.startswith("    "):
            entries[flag] += " " + line.strip()
        else:
            flag = None
    return entries


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_has_description_single_defaults_and_examples(command, capsys):
    text = _help(capsys, *filter(None, [command]))
    description = text.split("\n\n")[1]
    assert description.strip() and not description.lstrip().startswith(("options", "positional"))
    assert "``" not in text and ":mod:" not in text
    examples = [e for e in text.split("examples:\n", 1)[1].splitlines() if e.strip()]
    assert 2 <= len(examples) <= 4, examples
    for line in examples:
        words = shlex.split(line)
        assert words[:3] == ["python", "-m", "mtcert_torch"]
        build_parser(PROG).parse_args(words[3:])  # every example parses
        if command:
            assert words[3] == command
    if not command:
        assert {shlex.split(e)[3] for e in examples} == set(COMMANDS)
        return
    entries = _entries(text)
    sub = build_parser(PROG)._subparsers._group_actions[0].choices[command]
    for action in sub._actions:
        if not action.option_strings or action.dest == "help":
            continue
        entry = entries[action.option_strings[0]]
        said = entry.count("(default") + entry.count("(required)")
        assert said == 1, entry  # every default once, and only once
        for choice in action.choices or ():
            assert str(choice) in entry, entry
    assert text.count("\ncertification:\n") <= 1


def test_noise_help_names_only_the_task_s_smoothings(capsys):
    image = _entries(_help(capsys, "certify"))
    assert "rotation" not in image["--noise"] and "radian" not in image["--sigma"]
    assert "pixel units of [0, 1] images" in image["--sigma"]
    cloud = _entries(_help(capsys, "certify-pointcloud"))
    assert "rotation" in cloud["--smoothing"] and "radians" in cloud["--sigma"]
    for name in ("holm", "bonferroni", "generalized-holm", "fdr_bh"):
        assert name in image["--method"] and name in cloud["--method"]
    assert "k - 1" in image["--k"]


def test_model_kwargs_examples_are_taken_by_the_models():
    """The JSON examples in --model-kwargs' help build the model they are shown for."""
    import json

    from mtcert_torch.data.synthetic import TinySegNet
    from mtcert_torch.models import pointnet2_part_seg_msg

    def example(options) -> dict:
        text = next(o.help for o in options if o.name == "model_kwargs")
        return json.loads(re.search(r"'(\{.*?\})'", text).group(1))

    assert TinySegNet(3, **example(IMAGE_OPTIONS)).body[0].out_channels == 16
    net = pointnet2_part_seg_msg(**example(CLOUD_OPTIONS))
    assert net.sa1.npoint == 256
