"""Training augmentation: random erasing puts one mean-colored box in each chosen image."""

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
