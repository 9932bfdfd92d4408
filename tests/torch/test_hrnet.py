"""HRNetV2: architecture against upstream facts, checkpoint loading, registry."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mtcert_torch.models import (
    CONFIGS,
    HRNetConfig,
    HRNetV2,
    StageConfig,
    get_model,
    hrnetv2_w18,
    hrnetv2_w18_small_v1,
    hrnetv2_w18_small_v2,
    list_models,
    load_checkpoint,
)
from mtcert_torch.models import hrnet as hrnet_module

pytestmark = pytest.mark.torch

NAMES = (
    "hrnetv2_w18",
    "hrnetv2_w18_small_v1",
    "hrnetv2_w18_small_v2",
    "hrnetv2_w32",
    "hrnetv2_w48",
)

# ---------------------------------------------------------------------------
# Upstream configurations, transcribed here independently of the package from
# HRNet-Semantic-Segmentation experiments/cityscapes/*.yaml (MODEL.EXTRA):
# (NUM_MODULES, BLOCK, NUM_BLOCKS, NUM_CHANNELS) for STAGE1..STAGE4.
# ---------------------------------------------------------------------------
UPSTREAM = {
    "hrnetv2_w18_small_v1": [
        (1, "BOTTLENECK", [1], [32]),
        (1, "BASIC", [2, 2], [16, 32]),
        (1, "BASIC", [2, 2, 2], [16, 32, 64]),
        (1, "BASIC", [2, 2, 2, 2], [16, 32, 64, 128]),
    ],
    "hrnetv2_w18_small_v2": [
        (1, "BOTTLENECK", [2], [64]),
        (1, "BASIC", [2, 2], [18, 36]),
        (3, "BASIC", [2, 2, 2], [18, 36, 72]),
        (2, "BASIC", [2, 2, 2, 2], [18, 36, 72, 144]),
    ],
    "hrnetv2_w48": [
        (1, "BOTTLENECK", [4], [64]),
        (1, "BASIC", [4, 4], [48, 96]),
        (4, "BASIC", [4, 4, 4], [48, 96, 192]),
        (3, "BASIC", [4, 4, 4, 4], [48, 96, 192, 384]),
    ],
}
for _w in (18, 32):
    UPSTREAM[f"hrnetv2_w{_w}"] = [
        (m, b, n, [c * _w // 48 for c in ch]) for m, b, n, ch in UPSTREAM["hrnetv2_w48"]
    ]
    UPSTREAM[f"hrnetv2_w{_w}"][0] = UPSTREAM["hrnetv2_w48"][0]


class Tally:
    """Closed-form parameter and state-dict-entry count of conv/BN layers."""

    def __init__(self):
        self.params = 0
        self.entries = 0

    def conv(self, cin, cout, k, bias=False):
        self.params += cin * cout * k * k + (cout if bias else 0)
        self.entries += 2 if bias else 1

    def bn(self, c):
        self.params += 2 * c  # weight, bias
        self.entries += 5  # + running_mean, running_var, num_batches_tracked


def block_chain(t, block, cin, planes, n):
    expansion = 4 if block == "BOTTLENECK" else 1
    for b in range(n):
        inp = cin if b == 0 else planes * expansion
        if block == "BOTTLENECK":
            t.conv(inp, planes, 1), t.bn(planes)
            t.conv(planes, planes, 3), t.bn(planes)
            t.conv(planes, 4 * planes, 1), t.bn(4 * planes)
        else:
            t.conv(inp, planes, 3), t.bn(planes)
            t.conv(planes, planes, 3), t.bn(planes)
        if b == 0 and inp != planes * expansion:
            t.conv(inp, planes * expansion, 1), t.bn(planes * expansion)
    return planes * expansion


def expected_counts(stages, num_classes):
    """Parameters and state-dict entries of HRNetV2 from the architecture description."""
    t = Tally()
    t.conv(3, 64, 3), t.bn(64), t.conv(64, 64, 3), t.bn(64)
    _, block, nb, ch = stages[0]
    pre = [block_chain(t, block, 64, ch[0], nb[0])]
    for modules, block, nb, ch in stages[1:]:
        cur = list(ch)  # BASIC blocks: expansion 1
        for i, c in enumerate(cur):  # transition
            if i < len(pre) and c != pre[i]:
                t.conv(pre[i], c, 3), t.bn(c)
            elif i >= len(pre):
                for k in range(i + 1 - len(pre)):
                    out = c if k == i - len(pre) else pre[-1]
                    t.conv(pre[-1], out, 3), t.bn(out)
        for _ in range(modules):
            for c, n in zip(cur, nb, strict=True):
                block_chain(t, block, c, c, n)
            for i, ci in enumerate(cur):  # fuse: 1x1 from below, stride-2 chains from above
                for j, cj in enumerate(cur):
                    if j > i:
                        t.conv(cj, ci, 1), t.bn(ci)
                    elif j < i:
                        for _ in range(i - j - 1):
                            t.conv(cj, cj, 3), t.bn(cj)
                        t.conv(cj, ci, 3), t.bn(ci)
        pre = cur
    c = sum(pre)
    t.conv(c, c, 1, bias=True), t.bn(c), t.conv(c, num_classes, 1, bias=True)
    return t.params, t.entries


def counts(model):
    return sum(p.numel() for p in model.parameters()), len(model.state_dict())


@pytest.fixture(scope="module")
def w48():
    torch.manual_seed(0)
    return get_model("hrnetv2_w48")


@pytest.fixture(scope="module")
def small_v1():
    torch.manual_seed(1)
    return randomised_buffers(hrnetv2_w18_small_v1()).eval()


def randomised_buffers(model):
    """Give BatchNorm non-trivial running statistics so that loading them is visible."""
    g = torch.Generator().manual_seed(2)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(0.1 * torch.randn(buf.shape, generator=g))
        elif name.endswith("running_var"):
            buf.copy_(0.5 + torch.rand(buf.shape, generator=g))
    return model


# ----------------------------------------------------------------- architecture


@pytest.mark.parametrize("name", NAMES)
def test_configs_match_upstream_yaml(name):
    got = [
        (s.num_modules, s.block, list(s.num_blocks), list(s.num_channels))
        for s in CONFIGS[name].stages
    ]
    assert got == UPSTREAM[name]
    assert CONFIGS[name].final_conv_kernel == 1


def test_closed_form_count_reproduces_published_w48():
    # The published figures for W48 / 19 classes, which also validate the tally itself.
    assert expected_counts(UPSTREAM["hrnetv2_w48"], 19) == (65_859_379, 1_839)


def test_w48_counts_and_upstream_keys(w48):
    assert counts(w48) == (65_859_379, 1_839)
    shapes = {k: tuple(v.shape) for k, v in w48.state_dict().items()}
    assert shapes["conv1.weight"] == (64, 3, 3, 3)
    assert shapes["layer1.0.downsample.1.running_var"] == (256,)
    assert shapes["transition3.3.0.0.weight"] == (384, 192, 3, 3)
    assert shapes["stage2.0.fuse_layers.0.1.0.weight"] == (48, 96, 1, 1)
    assert shapes["stage3.3.branches.2.3.conv2.weight"] == (192, 192, 3, 3)
    assert shapes["stage4.2.fuse_layers.3.0.0.0.weight"] == (48, 48, 3, 3)
    assert shapes["last_layer.3.bias"] == (19,)
    assert shapes["last_layer.0.weight"] == (720, 720, 1, 1)
    # Upstream BN momentum; eps is PyTorch's default there too.
    bns = [m for m in w48.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {(m.momentum, m.eps) for m in bns} == {(0.01, 1e-5)}


@pytest.mark.parametrize(
    ("name", "num_classes"),
    [
        ("hrnetv2_w18_small_v1", 19),
        ("hrnetv2_w18_small_v2", 59),
        ("hrnetv2_w18", 19),
        ("hrnetv2_w32", 19),
    ],
)
def test_counts_match_closed_form(name, num_classes):
    torch.manual_seed(0)
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = get_model(name, num_classes=num_classes)
    assert counts(model) == expected_counts(UPSTREAM[name], num_classes)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("h", "w"), [(64, 128), (50, 70)])
def test_output_shape_every_config(name, h, w):
    # Meta tensors run the real forward code for shapes only.
    with torch.device("meta"):
        model = get_model(name, num_classes=7).eval()
        out = model(torch.empty(2, 3, h, w))
    # Two stride-2 convs with padding 1: ceil(n/2) twice.
    assert out.shape == (2, 7, math.ceil(math.ceil(h / 2) / 2), math.ceil(math.ceil(w / 2) / 2))


@pytest.mark.parametrize("builder", [hrnetv2_w18_small_v1, hrnetv2_w18_small_v2])
def test_forward_small_configs(builder):
    torch.manual_seed(0)
    model = builder().eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 128))
    assert out.shape == (1, 19, 16, 32)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_eval_forward_deterministic_and_batch_independent(small_v1):
    x = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = small_v1(x)
        b = small_v1(x)
        single = small_v1(x[1:2])
    assert torch.equal(a, b)
    # In eval mode an image's logits do not depend on the rest of the batch.
    torch.testing.assert_close(single, a[1:2], rtol=1e-5, atol=1e-5)
    # The input is not modified in place.
    assert torch.equal(x, torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(3)))


def test_align_corners_reaches_every_interpolation(monkeypatch):
    seen = []
    real = F.interpolate

    def spy(*args, **kwargs):
        seen.append((kwargs.get("mode"), kwargs.get("align_corners")))
        return real(*args, **kwargs)

    monkeypatch.setattr(hrnet_module.F, "interpolate", spy)
    torch.manual_seed(0)
    outs = {}
    for flag in (False, True):
        seen.clear()
        torch.manual_seed(0)
        model = randomised_buffers(hrnetv2_w18_small_v1(align_corners=flag)).eval()
        with torch.no_grad():
            outs[flag] = model(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4)))
        # fuse units: stage2 1 upsampling, stage3 3, stage4 6; head 3.
        assert seen == [("bilinear", flag)] * 13
    assert not torch.allclose(outs[False], outs[True])


def reference_forward(sd, stages, x, align_corners):
    """Plain functional HRNetV2 forward driven by state-dict names (BASIC stages)."""

    def bn(x, p):
        return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"],
                            sd[p + ".weight"], sd[p + ".bias"], False, 0.0, 1e-5)  # fmt: skip

    def conv(x, p, stride=1):
        w = sd[p + ".weight"]
        return F.conv2d(x, w, sd.get(p + ".bias"), stride, w.shape[-1] // 2)

    def block(x, p, bottleneck):
        idn = (
            bn(conv(x, p + ".downsample.0"), p + ".downsample.1")
            if p + ".downsample.0.weight" in sd
            else x
        )
        y = F.relu(bn(conv(x, p + ".conv1"), p + ".bn1"))
        y = bn(conv(y, p + ".conv2"), p + ".bn2")
        if bottleneck:
            y = bn(conv(F.relu(y), p + ".conv3"), p + ".bn3")
        return F.relu(y + idn)

    def up(x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)

    x = F.relu(bn(conv(x, "conv1", 2), "bn1"))
    x = F.relu(bn(conv(x, "conv2", 2), "bn2"))
    for b in range(stages[0][2][0]):
        x = block(x, f"layer1.{b}", True)
    xs = [x]
    for s, (modules, _, nb, ch) in enumerate(stages[1:], start=2):
        new = []
        for i in range(len(ch)):
            p = f"transition{s - 1}.{i}"
            if i < len(xs):
                new.append(
                    F.relu(bn(conv(xs[i], p + ".0"), p + ".1")) if p + ".0.weight" in sd else xs[i]
                )
            else:
                new.append(F.relu(bn(conv(xs[-1], p + ".0.0", 2), p + ".0.1")))
        xs = new
        for m in range(modules):
            p = f"stage{s}.{m}"
            for i in range(len(ch)):
                for b in range(nb[i]):
                    xs[i] = block(xs[i], f"{p}.branches.{i}.{b}", False)
            out = []
            for i in range(len(ch)):
                y = xs[i]
                for j in range(len(ch)):
                    q = f"{p}.fuse_layers.{i}.{j}"
                    if j > i:
                        y = y + up(bn(conv(xs[j], q + ".0"), q + ".1"), xs[i].shape[-2:])
                    elif j < i:
                        z = xs[j]
                        for k in range(i - j):
                            z = bn(conv(z, f"{q}.{k}.0", 2), f"{q}.{k}.1")
                            z = F.relu(z) if k < i - j - 1 else z
                        y = y + z
                out.append(F.relu(y))
            xs = out
    h = torch.cat([xs[0]] + [up(t, xs[0].shape[-2:]) for t in xs[1:]], 1)
    h = F.relu(bn(conv(h, "last_layer.0"), "last_layer.1"))
    return conv(h, "last_layer.3")


@pytest.mark.parametrize("align_corners", [False, True])
def test_forward_matches_functional_reference(small_v1, align_corners):
    model = hrnetv2_w18_small_v1(align_corners=align_corners).eval()
    model.load_state_dict(small_v1.state_dict())
    x = torch.rand(2, 3, 48, 80, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = reference_forward(
            small_v1.state_dict(), UPSTREAM["hrnetv2_w18_small_v1"], x, align_corners
        )
        got = model(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ checkpoints


def upstream_wrapped(model):
    """A checkpoint laid out as upstream train.py writes checkpoint.pth.tar."""
    state = {
        "model." + k: v.clone()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    state["loss.criterion.weight"] = torch.rand(model.num_classes)
    return {"epoch": 7, "best_mIoU": np.float64(0.61), "state_dict": state}


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(sa[k], sb[k]), k


def test_round_trip_upstream_file(small_v1, tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(upstream_wrapped(small_v1), path)
    torch.manual_seed(123)
    loaded = hrnetv2_w18_small_v1(checkpoint=str(path)).eval()
    assert_same_weights(loaded, small_v1)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.equal(loaded(x), small_v1(x))


def test_round_trip_plain_and_dataparallel_layouts(small_v1, tmp_path):
    plain = small_v1.state_dict()
    loaded = load_checkpoint(hrnetv2_w18_small_v1(), plain)
    assert_same_weights(loaded, small_v1)
    dp = {"module." + k: v for k, v in upstream_wrapped(small_v1)["state_dict"].items()}
    path = tmp_path / "final_state.pth"
    torch.save(dp, path)
    assert_same_weights(get_model("hrnetv2_w18_small_v1", checkpoint=path), small_v1)


def test_checkpoint_written_with_numpy_1(small_v1, tmp_path):
    # numpy 1 pickles scalars as numpy.core.multiarray.scalar; emulate such a legacy file.
    raw = tmp_path / "new.pth"
    torch.save(upstream_wrapped(small_v1), raw, _use_new_zipfile_serialization=False)
    data = raw.read_bytes()
    marker = b"numpy._core.multiarray\nscalar"
    assert data.count(marker) == 1
    old = tmp_path / "old.pth"
    old.write_bytes(data.replace(marker, b"numpy.core.multiarray\nscalar"))
    assert_same_weights(load_checkpoint(hrnetv2_w18_small_v1(), old), small_v1)


def test_other_width_is_refused_and_nothing_loaded(w48):
    torch.manual_seed(0)
    model = hrnetv2_w18()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="shape mismatches") as err:
        load_checkpoint(
            model, {"state_dict": {"model." + k: v for k, v in w48.state_dict().items()}}
        )
    msg = str(err.value)
    assert "transition1.0.0.weight: checkpoint (48, 256, 3, 3), model (18, 256, 3, 3)" in msg
    assert "missing keys" not in msg and "unexpected keys" not in msg
    assert "more" in msg  # long listings are truncated
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_other_depth_lists_missing_and_unexpected(small_v1):
    torch.manual_seed(0)
    v2 = hrnetv2_w18_small_v2()
    with pytest.raises(ValueError) as err:
        load_checkpoint(hrnetv2_w18_small_v1(), v2.state_dict())
    msg = str(err.value)
    assert "unexpected keys" in msg and "stage3.1.branches.0.0.conv1.weight" in msg
    assert "layer1.0.downsample.0.weight: checkpoint (256, 64, 1, 1), model (128, 64, 1, 1)" in msg
    state = dict(small_v1.state_dict())
    del state["stage4.0.fuse_layers.3.2.0.0.weight"]
    with pytest.raises(
        ValueError, match=r"missing keys \(1\):\n    stage4\.0\.fuse_layers\.3\.2\.0\.0\.weight"
    ):
        load_checkpoint(hrnetv2_w18_small_v1(), state)
    state = dict(small_v1.state_dict(), **{"aux_head.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"unexpected keys \(1\):\n    aux_head\.weight"):
        load_checkpoint(hrnetv2_w18_small_v1(), state)


def test_other_num_classes_is_refused(small_v1):
    with pytest.raises(
        ValueError,
        match=r"last_layer\.3\.weight: checkpoint \(19, 240, 1, 1\), model \(59, 240, 1, 1\)",
    ):
        hrnetv2_w18_small_v1(59, checkpoint=small_v1.state_dict())


def test_bad_checkpoint_sources(tmp_path, small_v1):
    model = hrnetv2_w18_small_v1()
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(model, tmp_path / "nope.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="not a state dict"):
        load_checkpoint(model, tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="file path or a state-dict mapping"):
        load_checkpoint(model, 3)
    with pytest.raises(ValueError, match="not a tensor"):
        load_checkpoint(model, {"conv1.weight": [1.0]})
    both = dict(small_v1.state_dict(), **{"model.conv1.weight": small_v1.conv1.weight})
    with pytest.raises(ValueError, match="twice"):
        load_checkpoint(model, both)
    # weights_only: a pickled callable is refused rather than executed.
    torch.save({"state_dict": {}, "hook": dataclasses.replace}, tmp_path / "code.pth")
    with pytest.raises(ValueError, match=r"weights_only=False\) and pass"):
        load_checkpoint(model, tmp_path / "code.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not read checkpoint"):
        load_checkpoint(model, tmp_path / "junk.pth")
    torch.save(small_v1.state_dict(), tmp_path / "whole.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "whole.pth").read_bytes()[:5000])
    with pytest.raises(ValueError, match="could not read checkpoint"):
        load_checkpoint(model, tmp_path / "cut.pth")


# --------------------------------------------------------------- registry, input


def test_registry():
    assert tuple(n for n in list_models() if n.startswith("hrnet")) == tuple(sorted(NAMES))
    with torch.device("meta"):
        model = get_model("hrnetv2_w32", num_classes=59, align_corners=True)
    assert isinstance(model, HRNetV2)
    assert model.config == CONFIGS["hrnetv2_w32"]
    assert model.last_layer[3].out_channels == 59 and model.align_corners
    with pytest.raises(ValueError, match="hrnetv2_w48"):
        get_model("hrnetv2_w64")
    with pytest.raises(TypeError):
        get_model("hrnetv2_w18_small_v1", checkpoint=None, width=3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        hrnetv2_w18_small_v1(0)
    with pytest.raises(ValueError, match="num_classes"):
        hrnetv2_w18_small_v1(19.0)
    with pytest.raises(ValueError, match="align_corners"):
        hrnetv2_w18_small_v1(align_corners="false")
    with pytest.raises(ValueError, match="config"):
        HRNetV2({"STAGE1": None})
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        hrnetv2_w18_small_v1().eval()(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="stage3 must have 3"):
        dataclasses.replace(CONFIGS["hrnetv2_w18"], stage3=CONFIGS["hrnetv2_w18"].stage2)
    assert StageConfig(1, "BASIC", [2, 2], [8, 16]) == StageConfig(1, "BASIC", (2, 2), (8, 16))
    with pytest.raises(ValueError, match="block"):
        StageConfig(1, "basic", (2,), (8,))
    with pytest.raises(ValueError, match="num_channels"):
        StageConfig(1, "BASIC", (2,), (0,))
    with pytest.raises(ValueError, match="equal length"):
        StageConfig(1, "BASIC", (2, 2), (8,))
    with pytest.raises(ValueError, match="final_conv_kernel"):
        dataclasses.replace(CONFIGS["hrnetv2_w18"], final_conv_kernel=2)


def test_custom_config_with_bottleneck_branches_and_3x3_head():
    # Configurations are data: bottleneck branches (projection shortcuts) and a 3x3
    # classifier are upstream options too.
    cfg = HRNetConfig(
        stage1=StageConfig(1, "BASIC", (1,), (8,)),
        stage2=StageConfig(1, "BOTTLENECK", (1, 1), (4, 8)),
        stage3=StageConfig(1, "BASIC", (1, 1, 1), (4, 8, 16)),
        stage4=StageConfig(1, "BASIC", (1, 1, 1, 1), (4, 8, 16, 32)),
        final_conv_kernel=3,
    )
    torch.manual_seed(0)
    model = HRNetV2(cfg, 5).eval()
    keys = model.state_dict()
    assert keys["layer1.0.downsample.0.weight"].shape == (8, 64, 1, 1)
    assert keys["stage2.0.branches.1.0.conv3.weight"].shape == (32, 8, 1, 1)
    assert keys["transition2.0.0.weight"].shape == (4, 16, 3, 3)
    assert keys["last_layer.3.weight"].shape == (5, 4 + 8 + 16 + 32, 3, 3)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 5, 8, 8)
