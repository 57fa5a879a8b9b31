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


def test_shift_off_keeps_earlier_runs_draws():
    x = _images(16, 32)
    base = Augmentation(erase=0.5)
    a = augment(x, base, torch.Generator().manual_seed(4))
    b = augment(x, Augmentation(erase=0.5, shift=0.0), torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    c = augment(x, Augmentation(erase=0.5, shift=0.1), torch.Generator().manual_seed(4))
    assert not torch.equal(a, c)
