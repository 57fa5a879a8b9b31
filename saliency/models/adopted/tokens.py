"""Vision transformers: where Grad-CAM reads their tokens, and the tokens as a grid.

Grad-CAM runs where the class evidence flows through the patch tokens:

- class-token pooling (ViT, DeiT): the tokens entering the last block, as its first norm
  gives them (as pytorch-grad-cam does); the tokens leaving the last block get no gradient
  from the class token, which is all the head reads;
- pooling over the patch tokens (average, attention pooling): the last block's output.

The class and register tokens (the ``prefix``) are dropped from the map and the patch
tokens ``[N, h*w, D]`` become maps ``[N, D, h, w]`` in row-major patch order. The rest of the
network still needs the prefix and, at a block's first norm, the block's residual input:
``AdoptedNet`` keeps them from its last ``forward_features`` (models.adopted.net).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

POOLS_ON_PATCHES = ("avg", "avgmax", "max", "map")  # timm's global_pool over patch tokens
CAM_REASON = (
    "a vision transformer's logits are not a linear map of pooled spatial maps (its class "
    "evidence reaches them through attention)"
)


@dataclass(frozen=True)
class TokenLayout:
    target: str  # module path of the cut (its output: tokens [N, T, D])
    pool: str  # "token" (class token) or how the patch tokens are pooled
    grid: tuple[int, int]  # patch grid (rows, columns)

    def to_dict(self) -> dict:
        return asdict(self)


def timm_layout(net: nn.Module) -> TokenLayout | None:
    """The layout of a timm ViT-style model (``blocks``, ``patch_embed.grid_size``,
    ``global_pool``); None for any other model."""
    blocks = getattr(net, "blocks", None)
    grid = getattr(getattr(net, "patch_embed", None), "grid_size", None)
    if not isinstance(blocks, nn.Sequential | nn.ModuleList) or grid is None or not len(blocks):
        return None
    pool = str(getattr(net, "global_pool", "token") or "token")
    last = f"blocks.{len(blocks) - 1}"
    if pool == "token":
        if not hasattr(blocks[-1], "norm1"):
            return None
        return TokenLayout(f"{last}.norm1", pool, (int(grid[0]), int(grid[1])))
    if pool not in POOLS_ON_PATCHES:
        return None
    return TokenLayout(last, pool, (int(grid[0]), int(grid[1])))


def hf_layout(net: nn.Module, config: dict) -> TokenLayout | None:
    """The layout of a Hugging Face ViT or DeiT image classifier (class-token pooling; its
    ``config.json`` as ``config``): the first norm (``layernorm_before``) of its last encoder
    layer, a module path in ``net``; None for other models."""
    if config.get("model_type") not in ("vit", "deit"):
        return None
    layers = [(name, m) for name, m in net.named_modules() if hasattr(m, "layernorm_before")]
    if not layers:
        return None
    side = int(config["image_size"]) // int(config["patch_size"])
    name = layers[-1][0]
    return TokenLayout(f"{name}.layernorm_before", "token", (side, side))
