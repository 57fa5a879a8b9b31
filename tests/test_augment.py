"""Training augmentation: random erasing puts one mean-colored box in each chosen image;
shift translates the content within its bound and leaves the other draws alone."""

import torch

from saliency.models.augment import ERASE_AREA, Augmentation, augment, erase_boxes


def _images(n: int = 64, size: int = 48) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(3))


def test_erasing_fills_one_box_per_image_with_its_mean_color():
    x = _images()
    out = erase_boxes(x, 1.0, torch.Generator().manual_seed(0))
    h, w = x.shape[-2:]
    changed = (out != x).any(dim=1)  # [N, H, W]
    for i in range(len(x)):
        ys, xs = torch.nonzero(changed[i], as_tuple=True)
        assert len(ys) > 0
        top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        box = torch.zeros(h, w, dtype=torch.bool)
        box[top:bottom, left:right] = True
        assert torch.equal(changed[i], box)  # one solid rectangle, nothing outside it
        mean = x[i].mean(dim=(1, 2))
        assert torch.allclose(out[i][:, box], mean[:, None].expand(3, int(box.sum())))
        area = float(box.sum()) / (h * w)
        assert area <= ERASE_AREA[1] + 0.05  # rounding of the sides
        # boxes are clipped to the image, so only the large ones can fall below the minimum
        assert area >= ERASE_AREA[0] - 0.01 or bottom - top == h or right - left == w


def test_erasing_probability_and_reproducibility():
    x = _images(400, 32)
    none = erase_boxes(x, 0.0, torch.Generator().manual_seed(1))
    assert torch.equal(none, x)
    a = erase_boxes(x, 0.5, torch.Generator().manual_seed(1))
    b = erase_boxes(x, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    erased = (a != x).flatten(1).any(1).float().mean().item()
    assert 0.42 < erased < 0.58  # 400 draws at p = 0.5: 3.2 standard errors either side


def test_training_augmentation_erases_last_through_the_same_generator():
    x = _images(8, 32)
    only = Augmentation(hflip=0.0, rotation_deg=0.0, brightness=0.0, contrast=0.0, erase=1.0)
    out = augment(x, only, torch.Generator().manual_seed(5))
    assert torch.equal(out, erase_boxes(x, 1.0, torch.Generator().manual_seed(5)))
    assert not torch.equal(out, x)


def _dot_centroids(out: torch.Tensor) -> torch.Tensor:
    """``[N, 2]`` (y, x) centroids of the bright pixels of single-dot images."""
    w = (out[:, 0] > 0.5).double()
    ys = torch.arange(out.shape[-2], dtype=torch.float64).view(1, -1, 1)
    xs = torch.arange(out.shape[-1], dtype=torch.float64).view(1, 1, -1)
    n = w.sum((1, 2))
    return torch.stack([(w * ys).sum((1, 2)) / n, (w * xs).sum((1, 2)) / n], 1)


def test_shift_translates_within_its_bound_without_rotating():
    size, s = 64, 0.1
    x = torch.zeros(200, 3, size, size)
    x[..., 30:34, 30:34] = 1.0  # a 4 px dot centred on (31.5, 31.5)
    only = Augmentation(hflip=0.0, rotation_deg=0.0, brightness=0.0, contrast=0.0, shift=s)
    out = augment(x, only, torch.Generator().manual_seed(2))
    moved = _dot_centroids(out) - 31.5
    assert moved.abs().max() <= s * size + 0.5  # +-6.4 px, up to half a pixel of rounding
    assert moved.abs().max() > 0.8 * s * size  # the draws reach the bound...
    assert moved.std(0).min() > 0.4 * s * size / 3**0.5  # ...and spread over it, both axes
    # bilinear translation of an interior dot keeps its mass at every sub-pixel offset
    assert torch.allclose(out[:, 0].sum((1, 2)), torch.full((200,), 16.0), atol=1e-3)


def _replayed(x: torch.Tensor, aug: Augmentation, seed: int) -> torch.Tensor:
    """The documented draw order replayed by hand from one generator: flip, angle, (shift x,
    shift y), contrast, brightness, then the erase boxes (tested exactly above)."""
    import math

    import torch.nn.functional as F

    gen, n = torch.Generator().manual_seed(seed), x.shape[0]
    flip = torch.rand(n, generator=gen) < aug.hflip
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    r = aug.rotation_deg
    theta = (torch.rand(n, generator=gen) * 2 * r - r) * (math.pi / 180.0)
    tx = ty = torch.zeros(n)
    if aug.shift > 0:
        s = 2 * aug.shift
        tx, ty = torch.rand(n, generator=gen) * 2 * s - s, torch.rand(n, generator=gen) * 2 * s - s
    cos, sin = torch.cos(theta), torch.sin(theta)
    mat = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    c = aug.contrast
    c = (torch.rand(n, generator=gen) * 2 * c + 1 - c).view(n, 1, 1, 1)
    gray = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - gray) * c + gray
    b = aug.brightness
    x = (x * (torch.rand(n, generator=gen) * 2 * b + 1 - b).view(n, 1, 1, 1)).clamp(0.0, 1.0)
    return erase_boxes(x, aug.erase, gen)


def test_shift_off_keeps_earlier_runs_draws_and_shift_on_keeps_the_angle(monkeypatch):
    """Without shift, augment consumes exactly the pre-shift draws (flip, angle, contrast,
    brightness, erase), replayed by hand; with shift on, the two translations are drawn after
    the angle, so the angle (the 2x2 rotation block of the affine matrix) is unchanged."""
    x = _images(16, 32)
    off = Augmentation(erase=0.5)
    torch.testing.assert_close(
        augment(x, off, torch.Generator().manual_seed(4)), _replayed(x, off, 4), atol=1e-6, rtol=0
    )
    on = Augmentation(erase=0.5, shift=0.1)
    torch.testing.assert_close(
        augment(x, on, torch.Generator().manual_seed(4)), _replayed(x, on, 4), atol=1e-6, rtol=0
    )
    import saliency.models.augment as module

    seen = []

    class Spy:  # torch.nn.functional with affine_grid recorded
        def __getattr__(self, name):
            return getattr(torch.nn.functional, name)

        def affine_grid(self, mat, *args, **kwargs):
            seen.append(mat.clone())
            return torch.nn.functional.affine_grid(mat, *args, **kwargs)

    monkeypatch.setattr(module, "F", Spy())
    augment(x, off, torch.Generator().manual_seed(4))
    augment(x, on, torch.Generator().manual_seed(4))
    off_mat, on_mat = seen
    assert torch.equal(off_mat[:, :, :2], on_mat[:, :, :2])  # the same angles
    assert (off_mat[:, :, 2] == 0).all() and (on_mat[:, :, 2].abs() > 0).all()
    assert (on_mat[:, :, 2].abs() <= 2 * 0.1).all()  # affine_grid's units: 2 per side
