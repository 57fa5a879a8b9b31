"""Attribution methods: exact values, equivalences and the reference implementation."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from saliency.methods.cam import cam, cam_grid
from saliency.methods.gradcam import COMBINE, grad_cam, grad_cam_grid
from saliency.models.camnet import CamNet
from saliency.models.zoo import ModelSpec, build_model


def hand_model() -> CamNet:
    """conv 1x1 (3 -> 2 channels, hand weights) -> ReLU -> GAP -> fc (one logit)."""
    conv = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 2.0, 0]]).view(2, 3, 1, 1))
    model = CamNet(nn.Sequential(conv, nn.ReLU()), channels=2, n_outputs=1, dropout=0.0)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[3.0, -1.0]]))
        model.fc.bias.fill_(0.5)
    return model.eval()


def test_cam_exact_values_on_a_hand_weighted_model():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = torch.tensor([[1.0, 0], [0, 2]])  # channel 0 -> feature 0 (x1)
    x[0, 1] = torch.tensor([[0.0, 1], [0, 0]])  # channel 1 -> feature 1 (x2)
    model = hand_model()
    expected_male = torch.tensor([[[3.0, -2.0], [0.0, 6.0]]])  # 3*f0 - 1*f1
    torch.testing.assert_close(cam(model, x, torch.tensor([1])), expected_male)
    torch.testing.assert_close(cam(model, x, torch.tensor([0])), -expected_male)
    # the map's mean plus the bias is the logit
    logit = model(x)[0, 0]
    torch.testing.assert_close(expected_male.mean() + 0.5, logit)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = build_model(ModelSpec(arch="resnet18", dropout=0.0)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _minmax(m: torch.Tensor) -> torch.Tensor:
    m = m.clamp(min=0)
    lo = m.amin(dim=(-2, -1), keepdim=True)
    hi = m.amax(dim=(-2, -1), keepdim=True)
    return (m - lo) / (hi - lo + 1e-7)


def test_normalized_cam_equals_normalized_gradcam_on_gap_fc(resnet):
    x = torch.randn(4, 3, 128, 128)
    t = torch.tensor([0, 1, 1, 0])
    a = _minmax(cam(resnet, x, t))
    b = _minmax(grad_cam(resnet, x, t))
    assert (a - b).abs().max() < 1e-4


def test_one_logit_maps_for_the_two_classes_are_negations(resnet):
    x = torch.randn(2, 3, 64, 64)
    for fn in (
        cam,
        lambda m, x, t: grad_cam(m, x, t, "gradcam"),
        lambda m, x, t: grad_cam(m, x, t, "hirescam"),
    ):
        torch.testing.assert_close(
            fn(resnet, x, torch.tensor([0, 0])), -fn(resnet, x, torch.tensor([1, 1]))
        )


@pytest.mark.parametrize("variant", list(COMBINE))
def test_gradcam_variants_equal_pytorch_grad_cam(resnet, variant):
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    cls = {
        "gradcam": pgc.GradCAM,
        "gradcam++": pgc.GradCAMPlusPlus,
        "xgradcam": pgc.XGradCAM,
        "layercam": pgc.LayerCAM,
        "hirescam": pgc.HiResCAM,
    }[variant]
    torch.manual_seed(1)
    x = torch.randn(3, 3, 128, 128)
    target = torch.tensor([1, 0, 1])
    for p in resnet.parameters():  # the library backpropagates from the output
        p.requires_grad_(True)
    with cls(model=resnet, target_layers=[resnet.features.layer4[-1]]) as ref:
        expected = ref(
            input_tensor=x, targets=[BinaryClassifierOutputTarget(int(t)) for t in target]
        )
    for p in resnet.parameters():
        p.requires_grad_(False)
    ours = grad_cam_grid(resnet, x, target, variant).clamp(min=0).numpy()  # library's ReLU
    # the library's min-max and resize per layer, then min-max again across layers
    ours = scale_cam_image(scale_cam_image(ours, target_size=(128, 128)))
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_cam_grid_needs_no_gradients(resnet):
    """CAM is a forward-only read of the last block: it runs under inference mode (where any
    backward pass raises) and gives, per cell, the fc weights of the target's score times the
    block's maps, by hand: w . A for the one logit's class 1, -w . A for class 0; the grid's
    mean plus the bias is the logit."""
    torch.manual_seed(4)
    x = torch.randn(2, 3, 64, 64)
    target = torch.tensor([1, 0])
    with torch.inference_mode():
        grid = cam_grid(resnet, x, target)
        maps, logit = resnet.forward_features(x), resnet(x)[:, 0]
    w = resnet.fc.weight[0]  # [512]: one logit
    by_hand = torch.einsum("c,nchw->nhw", w, maps) * torch.tensor([1.0, -1.0])[:, None, None]
    assert grid.shape == (2, 4, 4) and not grid.requires_grad  # 64 px at output stride 16
    torch.testing.assert_close(grid, by_hand, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grid[0].mean() + resnet.fc.bias[0], logit[0], rtol=1e-4, atol=1e-5)


def test_ig_on_a_linear_model_equals_input_minus_baseline_times_weight():
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(1, 3, 8, 8))

        def forward(self, x):
            return (x * self.w).sum(dim=(1, 2, 3)).view(-1, 1)

    from saliency.methods.ig import integrated_gradients

    torch.manual_seed(0)
    model = Linear()
    x, b = torch.randn(2, 3, 8, 8), torch.randn(1, 3, 8, 8)
    res = integrated_gradients(model, x, torch.tensor([1, 0]), b, n_steps=5)
    expected = (x - b) * model.w.detach()
    expected[1] *= -1  # class 0 of a one-logit model scores -z
    torch.testing.assert_close(res.attributions, expected, rtol=1e-5, atol=1e-6)
    assert float(res.completeness_error.max()) < 1e-5


def test_ig_completeness_and_agreement_with_captum(resnet):
    from captum.attr import IntegratedGradients

    from saliency.methods.base import target_scores
    from saliency.methods.ig import integrated_gradients

    torch.manual_seed(2)
    x = torch.randn(2, 3, 32, 32)
    base = torch.zeros(1, 3, 32, 32)
    target = torch.tensor([1, 0])
    res = integrated_gradients(resnet, x, target, base, n_steps=64)
    assert float(res.completeness_error.max()) < 0.01

    expected = torch.stack(
        [  # captum, one image at a time, same n_steps and method
            IntegratedGradients(
                lambda inp, t=t: target_scores(resnet(inp), t.expand(len(inp)))
            ).attribute(x[i : i + 1], base, n_steps=64, method="gausslegendre")[0]
            for i, t in enumerate(target.view(-1, 1))
        ]
    )
    rel = (res.attributions - expected).abs().max() / expected.abs().max()
    assert float(rel) < 1e-4


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "inception_v3"])
def test_folded_batchnorm_gives_the_same_logits_and_maps(arch):
    from saliency.methods.fold import fold_batchnorm

    torch.manual_seed(3)
    model = build_model(ModelSpec(arch=arch, dropout=0.0, se=arch == "resnet18")).eval()
    for m in model.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)
    t = torch.tensor([0, 1])
    a, b = grad_cam(model, x, t), grad_cam(folded, x, t)
    assert float((a - b).abs().max() / a.abs().max()) < 1e-4


def _small_cam_net() -> CamNet:
    """conv 3x3 (3 -> 4 channels, stride 1) -> ReLU -> GAP -> fc (one logit): its grid is the
    input's, so the library's resizes are identities and its maps can be written by hand."""
    torch.manual_seed(5)
    features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    model = CamNet(features, channels=4, n_outputs=1, dropout=0.0)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[6.0, -4.0, 2.0, -8.0]]))
    return model.eval()


def _minmax_np(m: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's scaling, per layer and again across layers: min to 0, max to 1."""
    for _ in range(2):
        m = m - m.min()
        m = m / (1e-7 + m.max())
    return m


def test_library_cams_are_scorecam_and_eigencam_of_the_target_by_hand():
    """ScoreCAM (Wang et al. 2020): each channel's map, min-max scaled, masks the input; the
    target's score of each masked input (class 1: the logit z, class 0: -z), softmaxed over
    channels, weighs the maps; ReLU; min-max. EigenCAM: the maps' projection on their first
    principal component (centred; the sign is the SVD's choice), whatever the target."""
    from saliency.methods.library_cams import library_cam

    model = _small_cam_net()
    torch.manual_seed(6)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        acts = model.forward_features(x)  # [2, 4, 16, 16]
        lo = acts.amin(dim=(2, 3), keepdim=True)
        masks = (acts - lo) / (acts.amax(dim=(2, 3), keepdim=True) - lo + 1e-8)
        z = model((x[:, None] * masks[:, :, None]).flatten(0, 1)).view(2, 4)
    a = acts.double().numpy()

    def scorecam(i: int, cls: int) -> np.ndarray:
        weights = torch.softmax(z[i].double() * (1 if cls == 1 else -1), 0).numpy()
        return _minmax_np(np.maximum(np.einsum("c,chw->hw", weights, a[i]), 0))

    for target in ([1, 0], [0, 1]):
        got = library_cam(model, x, torch.tensor(target), "scorecam").numpy()
        for i, cls in enumerate(target):
            np.testing.assert_allclose(got[i], scorecam(i, cls), atol=1e-5)
            assert np.abs(got[i] - scorecam(i, 1 - cls)).max() > 0.05  # the target matters
    flat = a.reshape(2, 4, -1).transpose(0, 2, 1)  # [2, HW, C]
    eigen = library_cam(model, x, torch.tensor([1, 0]), "eigencam").numpy()
    np.testing.assert_array_equal(eigen, library_cam(model, x, torch.tensor([0, 1]), "eigencam"))
    for i in range(2):
        centred = flat[i] - flat[i].mean(0)
        first = np.linalg.eigh(centred.T @ centred)[1][:, -1]  # the largest eigenvalue's
        signs = [_minmax_np(np.maximum(s * centred @ first, 0)).reshape(16, 16) for s in (1, -1)]
        assert np.abs(signs[0] - signs[1]).max() > 0.5  # the two signs are different maps
        assert min(np.abs(eigen[i] - m).max() for m in signs) < 1e-4


def test_the_fused_pass_gives_exactly_the_standalone_maps(resnet):
    """explain's fused pass (one forward, one head backward for the whole family) and the
    standalone cam / grad_cam / integrated_gradients give bit-identical maps."""
    from saliency.methods.baselines import make_baseline
    from saliency.methods.geometry import grid_geometry
    from saliency.methods.ig import IGConfig, integrated_gradients
    from saliency.methods.registry import explain_batch
    from saliency.models.preprocess import Preprocessing, normalize

    torch.manual_seed(7)
    pre, unit = Preprocessing(size=32), torch.rand(3, 3, 32, 32)
    x, t = normalize(unit, pre), torch.tensor([1, 0, 1])
    geometry = grid_geometry(resnet, 32)
    names = ["cam", "gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "ig"]
    cfg = IGConfig(n_steps=4, baseline="black")
    res, target = explain_batch(
        resnet, unit, pre, names, lambda z: t, {"ig": cfg}, geometry=geometry
    )
    assert torch.equal(target, t)
    assert torch.equal(res.maps["cam"], cam(resnet, x, t, geometry))
    for v in names[1:-1]:
        assert torch.equal(res.maps[v], grad_cam(resnet, x, t, v, geometry)), v
    base = make_baseline("black", unit, pre)
    ig = integrated_gradients(resnet, x, t, base, 4)
    assert torch.equal(res.maps["ig"], ig.maps)
    assert torch.equal(res.extras["ig_error"], ig.completeness_error)
    assert torch.equal(res.extras["ig_delta"], ig.delta)


def test_explain_batch_runs_ig_on_the_folded_copy(resnet):
    """IG's path passes go through its prepared model (the folded copy), with the same maps."""
    from saliency.methods.fold import fold_batchnorm
    from saliency.methods.registry import IGConfig, explain_batch
    from saliency.models.preprocess import Preprocessing

    torch.manual_seed(6)
    pre, unit = Preprocessing(size=32), torch.rand(2, 3, 32, 32)
    folded = fold_batchnorm(resnet)
    rows = []
    hook = folded.register_forward_pre_hook(lambda m, args: rows.append(len(args[0])))
    cfg = IGConfig(n_steps=8, baseline="black")
    pick = lambda z: torch.tensor([1, 0])  # noqa: E731
    res, _ = explain_batch(resnet, unit, pre, ["ig"], pick, {"ig": cfg}, prepared={"ig": folded})
    hook.remove()
    assert sum(rows) >= 2 * 8  # every path point of both images
    plain, _ = explain_batch(resnet, unit, pre, ["ig"], pick, {"ig": cfg})
    rel = (res.maps["ig"] - plain.maps["ig"]).abs().max() / plain.maps["ig"].abs().max()
    assert float(rel) < 1e-4


def _brightness_method(name: str = "brightness"):
    """A method from outside the package: no settings, one index column of its own."""
    from saliency.methods.base import Method

    def compute(ctx):
        ctx.extras[f"{name}_total"] = ctx.unit.sum(dim=(1, 2, 3))
        return ctx.unit.sum(dim=1)

    return Method(name, False, "summed RGB in [0, 3]", frozenset(), compute,
                  columns=(f"{name}_total",))  # fmt: skip


def test_a_method_from_outside_is_one_register_call(resnet):
    """``register`` adds a frozen Method to the registry; the fused pass runs it beside the
    built-in methods and returns its own column; names and columns cannot be taken twice."""
    from saliency.methods import registry
    from saliency.models.preprocess import Preprocessing

    plugin = _brightness_method()
    try:
        assert registry.register(plugin) is plugin and registry.REGISTRY["brightness"] is plugin
        registry.register(plugin)  # the same record again: nothing changes
        with pytest.raises(ValueError, match="already registered"):
            registry.register(_brightness_method())
        with pytest.raises(ValueError, match="belong to another method"):
            registry.register(dataclasses.replace(_brightness_method("other"),
                                                  columns=("brightness_total",)))  # fmt: skip
        torch.manual_seed(8)
        pre, unit = Preprocessing(size=32), torch.rand(2, 3, 32, 32)
        pick = lambda z: torch.tensor([1, 0])  # noqa: E731
        res, _ = registry.explain_batch(resnet, unit, pre, ["gradcam", "brightness"], pick)
        assert torch.equal(res.maps["brightness"], unit.sum(dim=1))
        assert torch.equal(res.extras["brightness_total"], unit.sum(dim=(1, 2, 3)))
        alone, _ = registry.explain_batch(resnet, unit, pre, ["gradcam"], pick)
        assert torch.equal(alone.maps["gradcam"], res.maps["gradcam"])
        logits_only, target = registry.explain_batch(resnet, unit, pre, [], pick)
        assert logits_only.maps == {} and torch.equal(logits_only.logits, res.logits)
    finally:
        registry.REGISTRY.pop("brightness", None)


def test_settings_are_checked_against_the_method_and_default_when_missing(resnet):
    from saliency.methods.ig import IGConfig
    from saliency.methods.registry import explain_batch, method_settings
    from saliency.models.preprocess import Preprocessing

    pre, unit = Preprocessing(size=32), torch.rand(1, 3, 32, 32)
    pick = lambda z: torch.tensor([1])  # noqa: E731
    with pytest.raises(TypeError, match="IGConfig settings"):
        explain_batch(resnet, unit, pre, ["ig"], pick, {"ig": {"n_steps": 4}})
    cfg = IGConfig(n_steps=4)
    assert method_settings(cfg, 3, "x") == {"ig": cfg}
    face = {"mean_face": torch.full((3, 32, 32), 0.5)}  # the default baseline's image
    small, _ = explain_batch(resnet, unit, pre, ["ig"], pick, {"ig": cfg}, data=face)
    default, _ = explain_batch(resnet, unit, pre, ["ig"], pick, data=face)  # IGConfig()
    assert not torch.equal(small.maps["ig"], default.maps["ig"])
    with pytest.raises(ValueError, match="mean face"):  # the default needs it
        explain_batch(resnet, unit, pre, ["ig"], pick)


def test_ig_settings_import_without_torch():
    import subprocess
    import sys

    code = ("import sys; from saliency.methods.ig_settings import IGConfig; IGConfig(); "
            "assert 'torch' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
    from saliency.methods.ig import IGConfig
    from saliency.methods.ig_settings import IGConfig as Torchless

    assert IGConfig is Torchless
    with pytest.raises(ValueError, match="unknown baseline"):
        IGConfig(baseline="grey")


@pytest.mark.parametrize(
    "method",
    ["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"],
)
def test_quadrature_rules_integrate_what_they_should_exactly(method):
    from saliency.methods.ig import quadrature

    n = 6
    alphas, w = quadrature(method, n)
    assert alphas.shape == w.shape == (n,) and (0 <= alphas).all() and (alphas <= 1).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)  # constants exactly
    # Gauss-Legendre with n nodes is exact up to degree 2n - 1; the midpoint and
    # trapezoid rules for linear functions; left and right sums miss x by -1/2n and +1/2n
    if method == "gausslegendre":
        for k in range(2 * n):
            assert (w * alphas**k).sum() == pytest.approx(1 / (k + 1), abs=1e-12)
    else:
        expected = {"trapezoid": 0.5, "middle": 0.5, "left": 0.5 - 1 / (2 * n)}
        expected["right"] = 0.5 + 1 / (2 * n)
        assert (w * alphas).sum() == pytest.approx(expected[method.split("_")[1]], abs=1e-12)
    with pytest.raises(ValueError, match="at least"):
        quadrature(method, 0)


@pytest.mark.parametrize("method", ["riemann_trapezoid", "riemann_left", "riemann_middle"])
def test_ig_riemann_rules_agree_with_captum(method):
    from captum.attr import IntegratedGradients

    from saliency.methods.ig import integrated_gradients

    torch.manual_seed(5)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(1))
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(4, 1)).eval()
    x, base = torch.randn(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    ours = integrated_gradients(model, x, torch.tensor([1]), base, n_steps=7, method=method)
    ref = IntegratedGradients(lambda inp: model(inp)[:, 0]).attribute(
        x, base, n_steps=7, method=method
    )
    if method == "riemann_trapezoid":  # captum's trapezoid weights sum to (n - 1) / n
        ref = ref * 7 / 6
        assert float(ours.completeness_error.max()) < 0.05
    torch.testing.assert_close(ours.attributions, ref, rtol=1e-4, atol=1e-6)
