"""A third modality through the task interface alone: per-token labels of a sequence tagger.

The task is the worked example of docs/torch.md ("Your own modality"), executed
from the page itself, so the documented code is the tested code (as are the
page's custom-model and Smooth examples).
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from mtcert_torch import Certifier

pytestmark = pytest.mark.torch
DOC = Path(__file__).resolve().parents[2] / "docs" / "torch.md"


def run_doc_example(name: str) -> dict:
    """Execute the code block marked ``<!-- example: name -->`` in docs/torch.md."""
    text = DOC.read_text()
    block = re.search(rf"<!-- example: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert block, f"docs/torch.md lost its {name} example"
    namespace = {"__name__": "docs_example"}
    torch.set_num_threads(1)
    exec(compile(block.group(1), str(DOC), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def example():
    """The sequence-task example's namespace."""
    return run_doc_example("sequence-task")


@pytest.mark.parametrize("name", ["custom-model", "smooth"])
def test_other_docs_examples_run(name, capsys):
    namespace = run_doc_example(name)
    assert "cert" in namespace or "radius" in namespace


def test_example_certifies_tokens_and_runs_the_evaluation_loop(example, capsys):
    cert, ev = example["cert"], example["ev"]
    assert cert.labels.shape == (12,) and cert.hits.shape == (12,)
    assert cert.radius == pytest.approx(0.1 * stats.norm.ppf(0.75))
    np.testing.assert_array_equal(cert.abstained, cert.labels < 0)
    certified = ~cert.abstained
    np.testing.assert_array_equal(cert.labels[certified], cert.guess[certified])
    assert certified.any()
    assert [r["name"] for r in ev.records] == ["s0", "s1", "s2"]
    assert ev.rows[0]["model"] == "base model" and ev.rows[1]["items"] == 3
    assert ev.records[0]["components"] == 12 and ev.records[0]["valid"] == 12


def test_example_task_controls_the_fwer_at_the_null_boundary(example):
    """Every token's tag is 1 with probability exactly τ (H0 at its boundary).

    The tagger says 1 where the noise on embedding coordinate 0 exceeds
    t = σ Φ⁻¹(1 − τ), so every certified token is a false certificate; in 150
    seeded repetitions at α = 0.1 more than 27 runs with one has probability
    < 1e-3 under Bin(150, 0.1).
    """
    tau, sigma = 0.75, 0.5
    t = sigma * stats.norm.ppf(1 - tau)
    embedding = torch.nn.Embedding(5, 4)
    torch.nn.init.zeros_(embedding.weight)

    def tagger(noisy):  # (B, L, D) -> (B, L, 2) logits
        one = (noisy[..., 0] > t).float()
        return torch.stack([1 - one, one], -1)

    task = example["TokenTaggingTask"](embedding, tagger, num_classes=2)
    tokens = torch.arange(5).repeat(4)
    bad = 0
    for rep in range(150):
        c = Certifier(task, batch_size=60, seed=rep)
        cert = c.certify(tokens, sigma=sigma, tau=tau, n0=20, n=100, alpha=0.1)
        bad += bool((cert.labels >= 0).any())
    assert bad <= 27


def test_example_task_validates_its_input(example):
    c = Certifier(example["TokenTaggingTask"](torch.nn.Embedding(3, 2), lambda z: z, 2))
    with pytest.raises(ValueError, match="tokens"):
        c.certify(torch.zeros(2, 2, dtype=torch.long), sigma=0.1, tau=0.75, n0=2, n=2, alpha=0.1)
