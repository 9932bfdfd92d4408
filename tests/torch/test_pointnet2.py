"""PointNet++ MSG part segmentation: upstream layout, plain reference forward, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mtcert_torch.models import get_model, list_models
from mtcert_torch.models.pointnet2 import (
    PointNet2PartSegMsg,
    category_part_mask,
    farthest_point_sample,
    pointnet2_part_seg_msg,
    predict_parts,
    restricted_argmax,
)

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

# ---------------------------------------------------------------------------
# Upstream layout, transcribed independently from yanx27/Pointnet_Pointnet2_pytorch
# models/pointnet2_part_seg_msg.py: (module, kind, input channels, widths).
# ---------------------------------------------------------------------------
RADII = {"sa1": (0.1, 0.2, 0.4), "sa2": (0.4, 0.8)}
NSAMPLE = {"sa1": (32, 64, 128), "sa2": (64, 128)}


def upstream_layers(normals: bool, num_parts: int = 50):
    extra = 3 if normals else 0
    sa1_in = 3 + extra + 3  # features (xyz [+ normals]) then relative xyz
    return [
        ("sa1", "msg", sa1_in, [[32, 32, 64], [64, 64, 128], [64, 96, 128]]),
        ("sa2", "msg", 320 + 3, [[128, 128, 256], [128, 196, 256]]),
        ("sa3", "sa", 512 + 3, [256, 512, 1024]),
        ("fp3", "fp", 1536, [256, 256]),
        ("fp2", "fp", 576, [256, 128]),
        ("fp1", "fp", 150 + extra, [128, 128]),
        ("head", "head", 128, [128, num_parts]),
    ]


def upstream_state(normals: bool, num_parts: int = 50) -> dict[str, tuple]:
    """Every upstream state-dict key with its shape."""
    out = {}

    def bn(prefix, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{p}"] = (c,)
        out[f"{prefix}.num_batches_tracked"] = ()

    for name, kind, cin, widths in upstream_layers(normals, num_parts):
        if kind == "msg":
            for i, branch in enumerate(widths):
                c = cin
                for j, w in enumerate(branch):
                    out[f"{name}.conv_blocks.{i}.{j}.weight"] = (w, c, 1, 1)
                    out[f"{name}.conv_blocks.{i}.{j}.bias"] = (w,)
                    bn(f"{name}.bn_blocks.{i}.{j}", w)
                    c = w
        elif kind in ("sa", "fp"):
            c = cin
            kernel = (1, 1) if kind == "sa" else (1,)
            for j, w in enumerate(widths):
                out[f"{name}.mlp_convs.{j}.weight"] = (w, c, *kernel)
                out[f"{name}.mlp_convs.{j}.bias"] = (w,)
                bn(f"{name}.mlp_bns.{j}", w)
                c = w
        else:
            out["conv1.weight"], out["conv1.bias"] = (128, 128, 1), (128,)
            bn("bn1", 128)
            out["conv2.weight"], out["conv2.bias"] = (num_parts, 128, 1), (num_parts,)
    return out


def closed_form_parameter_count(normals: bool, num_parts: int = 50) -> int:
    """Σ over 1×1 convolutions of (c_in + 1) c_out, plus 2 c_out per batch norm."""
    total = 0
    for _, kind, cin, widths in upstream_layers(normals, num_parts):
        chains = widths if kind == "msg" else [widths]
        for chain in chains:
            c = cin
            for j, w in enumerate(chain):
                total += (c + 1) * w
                if not (kind == "head" and j == 1):  # conv2 has no batch norm
                    total += 2 * w
                c = w
    return total


def randomize(model, seed=0):
    """Random weights and batch-norm statistics, so every layer matters in a comparison."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


@pytest.mark.parametrize("normals", [True, False])
def test_state_dict_matches_upstream_layout(normals):
    model = pointnet2_part_seg_msg(normals=normals)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == upstream_state(normals)
    n = sum(p.numel() for p in model.parameters())
    assert n == closed_form_parameter_count(normals)
    assert model.in_channels == (6 if normals else 3)


def test_other_sizes():
    model = PointNet2PartSegMsg(num_parts=7, num_categories=3, normals=False)
    assert model.conv2.out_channels == 7
    assert model.fp1.mlp_convs[0].in_channels == 3 + 3 + 3 + 128
    with pytest.raises(ValueError, match="num_parts"):
        PointNet2PartSegMsg(num_parts=0)
    with pytest.raises(ValueError, match="npoints"):
        PointNet2PartSegMsg(npoints=(8,))


# ---------------------------------------------------------------------------
# A plain reference forward pass: loops over centres, distances computed
# directly, layers applied as explicit affine maps (channels last).
# ---------------------------------------------------------------------------
def ref_fps(xyz, npoint, start):
    chosen = [int(start)]
    nearest = torch.full((xyz.shape[0],), float("inf"), dtype=xyz.dtype)
    for _ in range(npoint - 1):
        nearest = torch.minimum(nearest, ((xyz - xyz[chosen[-1]]) ** 2).sum(1))
        chosen.append(int(torch.argmax(nearest)))
    return chosen


def ref_ball(xyz, centre, radius, k):
    inside = [j for j in range(xyz.shape[0]) if float(((xyz[j] - centre) ** 2).sum()) <= radius**2]
    inside = inside[:k]
    return inside + [inside[0]] * (min(k, xyz.shape[0]) - len(inside))


def ref_layer(x, conv, bn=None, relu=True):
    w = conv.weight.reshape(conv.out_channels, conv.in_channels)
    y = x @ w.T + conv.bias
    if bn is not None:
        y = (y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    return torch.relu(y) if relu else y


def ref_mlp(x, convs, bns):
    for conv, bn in zip(convs, bns, strict=True):
        x = ref_layer(x, conv, bn)
    return x


def ref_msg(layer, xyz, feats, start, name):
    centres_idx = ref_fps(xyz, layer.npoint, start)
    centres = xyz[centres_idx]
    out = []
    for r, k, convs, bns in zip(
        RADII[name], NSAMPLE[name], layer.conv_blocks, layer.bn_blocks, strict=True
    ):
        rows = []
        for c in centres:
            nb = ref_ball(xyz, c, r, k)
            group = torch.cat([feats[nb], xyz[nb] - c], 1)
            rows.append(ref_mlp(group, convs, bns).max(0).values)
        out.append(torch.stack(rows))
    return centres, torch.cat(out, 1)


def ref_interp(fine, coarse, values):
    out = []
    for p in fine:
        d2 = ((coarse - p) ** 2).sum(1)
        order = sorted(range(len(d2)), key=lambda j: float(d2[j]))[:3]
        w = torch.stack([1.0 / (d2[j] + 1e-8) for j in order])
        w = w / w.sum()
        out.append(sum(w[i] * values[j] for i, j in enumerate(order)))
    return torch.stack(out)


def ref_forward(model, points, category, starts):
    """Log-probabilities (N, P) of one cloud ``points`` (N, C_in)."""
    xyz = points[:, :3]
    c1, l1 = ref_msg(model.sa1, xyz, points, starts[0], "sa1")
    c2, l2 = ref_msg(model.sa2, c1, l1, starts[1], "sa2")
    l3 = ref_mlp(torch.cat([c2, l2], 1), model.sa3.mlp_convs, model.sa3.mlp_bns).max(0).values
    f3 = ref_mlp(torch.cat([l2, l3.expand(len(c2), -1)], 1), model.fp3.mlp_convs, model.fp3.mlp_bns)
    f2 = ref_mlp(torch.cat([l1, ref_interp(c1, c2, f3)], 1), model.fp2.mlp_convs, model.fp2.mlp_bns)
    onehot = torch.zeros(len(xyz), model.num_categories, dtype=points.dtype)
    onehot[:, category] = 1
    f1 = ref_mlp(
        torch.cat([onehot, xyz, points, ref_interp(xyz, c1, f2)], 1),
        model.fp1.mlp_convs,
        model.fp1.mlp_bns,
    )
    h = ref_layer(f1, model.conv1, model.bn1)
    return torch.log_softmax(ref_layer(h, model.conv2, relu=False), 1), l3


@pytest.mark.parametrize("normals", [True, False])
def test_forward_matches_plain_reference(normals):
    model = randomize(PointNet2PartSegMsg(normals=normals, npoints=(12, 5)).double())
    gen = torch.Generator().manual_seed(5)
    b, n = 2, 40
    points = torch.rand(b, n, model.in_channels, generator=gen, dtype=torch.float64) - 0.5
    category = torch.tensor([4, 11])
    onehot = F.one_hot(category, 16).double()
    with torch.no_grad():
        logp, feat = model(
            points.transpose(1, 2), onehot, generator=torch.Generator().manual_seed(9)
        )
        # Each set-abstraction layer draws one start index per cloud, sa1 then sa2.
        g = torch.Generator().manual_seed(9)
        s1, s2 = torch.randint(n, (b,), generator=g), torch.randint(12, (b,), generator=g)
        for i in range(b):
            ref, ref_feat = ref_forward(model, points[i], int(category[i]), (s1[i], s2[i]))
            torch.testing.assert_close(logp[i], ref, rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(feat[i, :, 0], ref_feat, rtol=1e-9, atol=1e-9)
    assert logp.shape == (b, n, 50) and feat.shape == (b, 1024, 1)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(b, n, dtype=torch.float64))


def test_input_checks():
    model = PointNet2PartSegMsg(npoints=(8, 4)).eval()
    with pytest.raises(ValueError, match=r"xyz must have shape \(B, 6, N\)"):
        model(torch.zeros(1, 3, 16), torch.zeros(1, 16))
    with pytest.raises(ValueError, match="cls_label"):
        model(torch.zeros(1, 6, 16), torch.zeros(1, 50))


# ------------------------------------------------------------------- seeded sampling
def test_fps_seeded_and_farthest():
    xyz = torch.rand(3, 50, 3, generator=torch.Generator().manual_seed(1))
    idx = farthest_point_sample(xyz, 10, generator=torch.Generator().manual_seed(7))
    again = farthest_point_sample(xyz, 10, generator=torch.Generator().manual_seed(7))
    assert torch.equal(idx, again)
    starts = torch.randint(50, (3,), generator=torch.Generator().manual_seed(7))
    for b in range(3):
        assert idx[b].tolist() == ref_fps(xyz[b], 10, starts[b])
    assert len(set(idx[0].tolist())) == 10
    # Different seeds start elsewhere (a cloud of 50 points: 20 seeds all equal is 50^-57).
    firsts = {
        tuple(farthest_point_sample(xyz, 1, generator=torch.Generator().manual_seed(s))[:, 0])
        for s in range(20)
    }
    assert len(firsts) > 1


def test_forward_reproducible_with_generator():
    model = randomize(PointNet2PartSegMsg(npoints=(16, 4)))
    x = torch.randn(2, 6, 64, generator=torch.Generator().manual_seed(2))
    onehot = F.one_hot(torch.tensor([0, 1]), 16).float()
    with torch.no_grad():
        a = model(x, onehot, generator=torch.Generator().manual_seed(3))[0]
        b = model(x, onehot, generator=torch.Generator().manual_seed(3))[0]
        c = model(x, onehot, generator=torch.Generator().manual_seed(4))[0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # the FPS start matters for a randomly weighted net


# ------------------------------------------------------------------- prediction
def test_restricted_argmax_matches_slices():
    from mtcert_torch.data.shapenet import PART_RANGES

    scores = torch.randn(16, 7, 50, generator=torch.Generator().manual_seed(0))
    category = torch.arange(16)
    got = restricted_argmax(scores, category, category_part_mask())
    for c, (a, b) in enumerate(PART_RANGES):
        want = np.argmax(scores[c, :, a:b].numpy(), 1) + a
        np.testing.assert_array_equal(got[c].numpy(), want)
    # Ties go to the category's first part, as numpy's argmax on the slice.
    flat = restricted_argmax(torch.zeros(2, 3, 50), torch.tensor([4, 15]), category_part_mask())
    assert flat.tolist() == [[12] * 3, [47] * 3]
    # The global argmax would pick a label of another category here.
    s = torch.zeros(1, 1, 50)
    s[0, 0, 0] = 5.0
    assert int(restricted_argmax(s, torch.tensor([15]), category_part_mask())) == 47


def test_category_part_mask_checks():
    assert category_part_mask(((0, 2), (2, 3))).tolist() == [
        [True, True, False],
        [False, False, True],
    ]
    with pytest.raises(ValueError, match="part_ranges"):
        category_part_mask(((0, 2), (2, 2)))
    with pytest.raises(ValueError, match="part_ranges"):
        category_part_mask(((0, 60),), 50)


def test_predict_parts_averages_votes():
    model = randomize(PointNet2PartSegMsg(npoints=(16, 4)))
    points = torch.randn(3, 48, 6, generator=torch.Generator().manual_seed(8))
    category = torch.tensor([0, 4, 10])
    labels = predict_parts(
        model, points, category, votes=3, generator=torch.Generator().manual_seed(1)
    )
    g = torch.Generator().manual_seed(1)
    onehot = F.one_hot(category, 16).float()
    with torch.no_grad():
        mean = sum(model(points.transpose(1, 2), onehot, generator=g)[0] for _ in range(3)) / 3
    from mtcert_torch.data.shapenet import PART_RANGES

    for i, c in enumerate(category.tolist()):
        a, b = PART_RANGES[c]
        np.testing.assert_array_equal(labels[i].numpy(), mean[i, :, a:b].argmax(-1).numpy() + a)
    one = predict_parts(model, points[:1], 0, votes=1, generator=torch.Generator().manual_seed(1))
    assert one.shape == (1, 48)


def test_predict_parts_checks():
    model = PointNet2PartSegMsg(npoints=(8, 4)).eval()
    x = torch.zeros(2, 16, 6)
    with pytest.raises(ValueError, match="votes"):
        predict_parts(model, x, 0, votes=0)
    with pytest.raises(ValueError, match="category"):
        predict_parts(model, x, 16)
    with pytest.raises(ValueError, match="category"):
        predict_parts(model, x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="category"):
        predict_parts(model, x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="part_ranges has 2 categories"):
        predict_parts(model, x, 0, part_ranges=((0, 25), (25, 50)))
    with pytest.raises(ValueError, match="points"):
        predict_parts(model, torch.zeros(16, 6), 0)


# ------------------------------------------------------------------- checkpoints, registry
def save_upstream(path, model):
    """``best_model.pth`` as the reference training script writes it."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    state = {
        "epoch": 17,
        "train_acc": np.float64(0.93),
        "test_acc": np.float64(0.91),
        "class_avg_iou": np.float64(0.81),
        "inctance_avg_iou": np.float64(0.84),
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": opt.state_dict(),
    }
    torch.save(state, path)


def test_checkpoint_round_trip(tmp_path):
    trained = randomize(pointnet2_part_seg_msg(normals=True, npoints=(16, 4)), seed=3)
    save_upstream(tmp_path / "best_model.pth", trained)
    loaded = pointnet2_part_seg_msg(
        normals=True, checkpoint=tmp_path / "best_model.pth", npoints=(16, 4)
    ).eval()
    for k, v in trained.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = torch.randn(1, 6, 32)
    onehot = F.one_hot(torch.tensor([2]), 16).float()
    with torch.no_grad():
        a = trained(x, onehot, generator=torch.Generator().manual_seed(0))[0]
        b = loaded(x, onehot, generator=torch.Generator().manual_seed(0))[0]
    assert torch.equal(a, b)
    # A DataParallel-wrapped state dict loads too.
    wrapped = {"model_state_dict": {"module." + k: v for k, v in trained.state_dict().items()}}
    again = pointnet2_part_seg_msg(checkpoint=wrapped)
    assert torch.equal(again.conv2.weight, trained.conv2.weight)


def test_checkpoint_mismatch_refused(tmp_path):
    save_upstream(tmp_path / "xyz_only.pth", pointnet2_part_seg_msg(normals=False))
    with pytest.raises(ValueError, match=r"sa1\.conv_blocks\.0\.0\.weight"):
        pointnet2_part_seg_msg(normals=True, checkpoint=tmp_path / "xyz_only.pth")
    with pytest.raises(ValueError, match=r"conv2\.weight"):
        pointnet2_part_seg_msg(num_parts=40, checkpoint=tmp_path / "xyz_only.pth", normals=False)
    with pytest.raises(ValueError, match="not found"):
        pointnet2_part_seg_msg(checkpoint=tmp_path / "missing.pth")


def test_registry():
    assert "pointnet2_part_seg_msg" in list_models()
    model = get_model("pointnet2_part_seg_msg", normals=False, num_parts=50)
    assert isinstance(model, PointNet2PartSegMsg) and model.in_channels == 3


def test_non_finite_part_scores_are_refused():
    # a NaN network must stop the run, not certify its argmax as a part label
    from mtcert_torch.models.pointnet2 import restricted_argmax
    from mtcert_torch.task import NonFiniteOutputError

    scores = torch.zeros(1, 3, 50)
    mask = torch.ones(16, 50, dtype=torch.bool)
    restricted_argmax(scores, torch.tensor([0]), mask)  # finite: fine
    scores[0, 1, 7] = float("nan")
    with pytest.raises(NonFiniteOutputError, match="non-finite"):
        restricted_argmax(scores, torch.tensor([0]), mask)
