"""Where each cell of the last block's grid sits in the image, and upsampling that honours it.

A convolutional net's cell ``(i, j)`` is centred on pixel ``(oy + sy * i, ox + sx * j)``
(pixel centres at integer coordinates): the centre of its receptive field. Resizing a grid
map with the image-resize rule (half-pixel centres, ``o = (s - 1) / 2``; OpenCV, PIL and
pytorch-grad-cam do this) assumes that offset; symmetric zero padding in strided convolutions
does not give it. A torchvision ResNet at output stride 16 has ``o = 0``, so the resize rule
draws every CAM-type map half a cell (7.5 px) too low and too far right; VGG's 2x2 pools give
``o = 7.5`` and the two rules agree.

The receptive-field geometry is measured, not assumed, by a probe that runs the model's own
``forward_features`` with every convolution made a uniform one-channel kernel of the same
shape, stride, padding and dilation, max pools made average pools, normalization layers the
identity and global pooling cut from the gradient. The input gradient of one interior cell is
then symmetric about that cell's receptive-field centre, and its centroid is the centre,
exactly. Any model whose probe fails falls back to the resize rule, and says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from saliency.imsize import InputSize, hw
from saliency.methods.names import RULES

PROBE_MAX = 4096  # largest probe image side (px); the probe runs one channel, so it is cheap


@dataclass(frozen=True)
class GridGeometry:
    """Cell ``k`` along an axis is centred on pixel ``offset + stride * k`` (y, then x) of
    a ``grid`` of cells."""

    rule: str
    grid: tuple[int, int]
    stride: tuple[float, float]
    offset: tuple[float, float]
    note: str = ""

    @classmethod
    def half_pixel(cls, size: tuple[int, int], grid: tuple[int, int], note: str = ""):
        """The image-resize rule: cells tile the image, centres at ``(k + 0.5) s - 0.5``."""
        stride = (size[0] / grid[0], size[1] / grid[1])
        offset = ((stride[0] - 1) / 2, (stride[1] - 1) / 2)
        return cls("half-pixel", tuple(grid), stride, offset, note)

    def to_dict(self) -> dict:
        return asdict(self)


def _interp_matrix(n_out: int, n_in: int, stride: float, offset: float) -> torch.Tensor:
    """``[n_out, n_in]`` linear-interpolation weights: pixel ``y`` reads grid coordinate
    ``(y - offset) / stride``, clamped to the grid (beyond the outer centres: the edge)."""
    u = ((torch.arange(n_out, dtype=torch.float64) - offset) / stride).clamp(0, n_in - 1)
    lo = u.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = u - lo
    r = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    r.index_put_((rows, lo), 1 - frac, accumulate=True)
    r.index_put_((rows, hi), frac, accumulate=True)
    return r


def upsample(
    maps: torch.Tensor, size: tuple[int, int], geometry: GridGeometry | None = None
) -> torch.Tensor:
    """Grid maps ``[N, h, w]`` -> ``[N, H, W]`` by bilinear interpolation between cell
    centres placed by ``geometry`` (default: the half-pixel resize rule). Linear in the map:
    one cell's value lands exactly on its centre pixel when that is an integer."""
    h, w = maps.shape[-2:]
    if geometry is None:
        geometry = GridGeometry.half_pixel(size, (h, w))
    ry = _interp_matrix(size[0], h, geometry.stride[0], geometry.offset[0])
    rx = _interp_matrix(size[1], w, geometry.stride[1], geometry.offset[1])
    ry, rx = ry.to(maps.device, maps.dtype), rx.to(maps.device, maps.dtype)
    return torch.einsum("yi,nij,xj->nyx", ry, maps, rx)


class _Probe(TorchFunctionMode):
    """Runs a net with uniform one-channel convolutions (same geometry), average pools,
    identity normalization and global pools detached (see the module docstring)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.conv2d, F.conv2d):
            x, weight = args[0], args[1]
            rest = dict(zip(("stride", "padding", "dilation"), args[3:6], strict=False))
            rest.update({k: kwargs[k] for k in ("stride", "padding", "dilation") if k in kwargs})
            kh, kw = weight.shape[-2:]
            k = torch.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=x.dtype, device=x.device)
            return F.conv2d(x.mean(dim=1, keepdim=True), k, None, **rest)
        if func in (F.max_pool2d, torch.max_pool2d):
            names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
            p = dict(zip(names, args[1:], strict=False)) | kwargs
            if p.pop("return_indices", False) or p.pop("dilation", 1) not in (1, (1, 1)):
                raise NotImplementedError("max pooling with indices or dilation")
            return F.avg_pool2d(args[0], **p)
        if func in (F.batch_norm, F.instance_norm, F.group_norm, F.layer_norm):
            return args[0]
        if func in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
            out = func(*args, **kwargs)
            return tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()
        if func is F.linear:  # e.g. squeeze-excitation on pooled (detached) vectors
            x, weight = args[0], args[1]
            return x.mean(dim=-1, keepdim=True).expand(*x.shape[:-1], weight.shape[0])
        return func(*args, **kwargs)


def _centroids(profile: torch.Tensor) -> torch.Tensor:
    """Centroid of a 1-D non-negative profile ``[..., L]`` (index units)."""
    pos = torch.arange(profile.shape[-1], dtype=profile.dtype, device=profile.device)
    return (profile * pos).sum(-1) / profile.sum(-1)


def _symmetric(profile: torch.Tensor, centre: float, tol: float = 1e-6) -> bool:
    """Is ``profile [L]`` mirror-symmetric about ``centre`` (integer or half-integer)?"""
    twice = round(2 * centre)
    if abs(twice - 2 * centre) > 1e-6:
        return False
    idx = torch.arange(profile.shape[0])
    mirror = twice - idx
    ok = (mirror >= 0) & (mirror < profile.shape[0])
    if bool((profile[~ok].abs() > tol * profile.abs().max()).any()):
        return False
    return bool(torch.allclose(profile[ok], profile[mirror[ok]], rtol=1e-6, atol=1e-12))


def _probe_at(features, side: int, device) -> tuple[tuple, tuple] | None:
    """Offset and stride ``(y, x)`` in px, from the centres of two neighbouring interior
    cells of a ``side`` px probe image; None while a receptive field touches its border."""
    x = torch.ones(2, 3, side, side, dtype=torch.float64, device=device, requires_grad=True)
    with torch.enable_grad(), _Probe():
        out = features(x)
    if not out.requires_grad:
        raise ValueError("the last block's cells do not depend on the input")
    gh, gw = out.shape[-2:]
    if gh < 3 or gw < 3:
        return None
    i, j = gh // 2, gw // 2
    score = out[0, :, i, j].sum() + out[1, :, i + 1, j + 1].sum()
    (grad,) = torch.autograd.grad(score, x)
    profile = grad.sum(dim=1)  # [2, side, side]
    if not bool((profile.abs().amax(dim=(1, 2)) > 0).all()):
        raise ValueError("the last block's cells do not depend on the input")
    border = torch.cat([profile[:, 0], profile[:, -1], profile[:, :, 0], profile[:, :, -1]], 1)
    if bool((border.abs() > 1e-12 * profile.abs().amax()).any()):
        return None
    rows, cols = profile.sum(dim=2), profile.sum(dim=1)  # [2, side] each
    if bool((rows < -1e-12).any()) or bool((cols < -1e-12).any()):
        raise ValueError("the probe's receptive field has negative weights")
    cy, cx = _centroids(rows).tolist(), _centroids(cols).tolist()
    for k in range(2):
        if not (_symmetric(rows[k], cy[k]) and _symmetric(cols[k], cx[k])):
            raise ValueError("the probe's receptive field is not symmetric")
    sy, sx = cy[1] - cy[0], cx[1] - cx[0]
    return (cy[0] - i * sy, cx[0] - j * sx), (sy, sx)


def grid_geometry(model, size: InputSize, rule: str = "receptive-field") -> GridGeometry:
    """Geometry of ``model.forward_features`` for inputs of ``size`` (one side, or
    ``(height, width)`` in px). The probe measures stride and offset on square inputs: a
    convolution's placement does not depend on the input's shape, only the grid does.

    ``rule`` is ``receptive-field`` (measured by the probe; falls back to the resize rule
    with a note when the model cannot be probed) or ``half-pixel`` (the resize rule)."""
    if rule not in RULES:
        raise ValueError(f"unknown upsampling rule {rule!r}; valid: {', '.join(RULES)}")
    device = next(model.parameters()).device
    shape = hw(size)
    with torch.no_grad():
        grid = tuple(model.forward_features(torch.zeros(1, 3, *shape, device=device)).shape[-2:])
    if rule == "half-pixel":
        return GridGeometry.half_pixel(shape, grid)
    if getattr(model, "patch_grid", False):  # a transformer's patches tile the image exactly
        return GridGeometry.half_pixel(shape, grid)
    if grid == shape:
        # one cell per pixel: the resize rule is the identity (stride 1, offset 0), which is
        # also every centred stride-1 net's receptive-field placement; recorded as the rule
        # applied, not as measured (an even-kernel net could sit half a pixel off)
        return GridGeometry.half_pixel(shape, grid)
    side = 2 * max(shape)
    why = f"the receptive field is wider than the largest probe ({PROBE_MAX} px)"
    try:
        while side <= PROBE_MAX:
            found = _probe_at(model.forward_features, side, device)
            if found is not None:
                offset, stride = (tuple(round(v, 6) + 0.0 for v in t) for t in found)  # no -0.0
                return GridGeometry("receptive-field", grid, stride, offset)
            side *= 2
    except (NotImplementedError, ValueError, RuntimeError) as err:
        why = str(err).splitlines()[0]
    return GridGeometry.half_pixel(shape, grid, f"receptive-field probe failed: {why}")
