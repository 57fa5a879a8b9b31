"""AdoptedNet: an external classifier cut at its last block, meeting the model protocol.

``forward_features`` is the model up to the cut (maps ``[N, C, h, w]``); ``head`` is the rest,
then the output slice (the gender outputs of a multi-head net) and the output kind:
``logits`` as they are, ``log-probabilities`` as they are (they differ from logits by a
constant per row, so softmax gives the same probabilities), ``probabilities`` as their log
(one output: the log-odds). A trailing softmax was cut off before (models.adopted.graph), so maps
explain logits whenever the graph allows it.

CAM-ready: when the head is numerically a linear map of the globally pooled maps, the
fitted map becomes ``fc`` and ``head`` is ``fc(mean_hw(maps))`` (CamNet's shape, so CAM is
the exact spatial decomposition of the logit); otherwise ``fc`` is None and ``cam`` is
refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

OUTPUTS = ("logits", "probabilities", "log-probabilities")
CAM_TOLERANCE = 1e-4  # max deviation of the linear fit, relative to max(1, |logit|)
TINY = 1e-12


def parse_slice(text: str | None) -> tuple[int, int] | None:
    """``"7:9"`` -> ``(7, 9)``: outputs 7 and 8, in the order ``--classes`` names them."""
    if not text:
        return None
    try:
        start, stop = (int(v) for v in text.split(":"))
    except ValueError as exc:
        raise ValueError(f"--output-slice {text}: write it as START:STOP, e.g. 7:9") from exc
    if not 0 <= start < stop:
        raise ValueError(f"--output-slice {text}: need 0 <= START < STOP")
    return start, stop


def to_logits(out: torch.Tensor, kind: str, out_slice: tuple[int, int] | None) -> torch.Tensor:
    """The model's raw output ``[N, M]`` -> logits ``[N, K]`` (module docstring)."""
    if out.ndim == 1:
        out = out[:, None]
    out = out.flatten(1)
    if out_slice is not None:
        if out.shape[1] < out_slice[1]:
            raise ValueError(
                f"--output-slice {out_slice[0]}:{out_slice[1]} is beyond the model's "
                f"{out.shape[1]} outputs"
            )
        out = out[:, out_slice[0] : out_slice[1]]
    if kind == "probabilities":
        p = out.clamp(TINY, 1 - TINY) if out.shape[1] == 1 else out.clamp_min(TINY)
        return torch.log(p) - torch.log1p(-p) if out.shape[1] == 1 else torch.log(p)
    return out


class AdoptedNet(nn.Module):
    """``features``: x -> maps; ``rest``: maps -> raw outputs (None when CAM-ready, where
    ``fc`` replaces it).

    A vision transformer (``tokens``: ``{"prefix": R, "grid": [h, w]}``) is cut at tokens
    ``[N, R + h*w, D]`` (models.adopted.tokens): ``forward_features`` gives the patch tokens
    as maps ``[N, D, h, w]`` and keeps the ``R`` class and register tokens, and any earlier
    value the rest reads (a block's residual input), for ``head`` on the same batch."""

    def __init__(
        self,
        features: nn.Module,
        rest: nn.Module | None,
        fc: nn.Linear | None,
        n_outputs: int,
        output: str = "logits",
        out_slice: tuple[int, int] | None = None,
        cam_refusal: str = "",
        tokens: dict | None = None,
    ):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"--output {output}: valid: {', '.join(OUTPUTS)}")
        self.features = features
        self.rest = rest
        self.fc = fc
        self.output = output
        self.out_slice = out_slice
        self.n_outputs = n_outputs
        self.cam_refusal = cam_refusal  # why cam does not apply ("" when fc is set)
        self.tokens = tokens
        self._kept: tuple[torch.Tensor, ...] = ()  # prefix tokens and carried values

    @property
    def feature_layer(self) -> nn.Module:
        return self.features

    @property
    def patch_grid(self) -> bool:
        """Whether the maps are a transformer's patch tokens (cells tile the image exactly)."""
        return self.tokens is not None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The cut layer's maps ``[N, C, h, w]`` for input ``[N, 3, H, W]``."""
        out = self.features(x)
        if self.tokens is None:
            return out
        t, *carried = out if isinstance(out, tuple | list) else (out,)
        r = int(self.tokens["prefix"])
        h, w = self.tokens["grid"]
        self._kept = (t[:, :r], *carried)
        return t[:, r:].transpose(1, 2).reshape(len(t), t.shape[2], h, w)

    def rest_outputs(self, maps: torch.Tensor) -> torch.Tensor:
        """The model's raw output (of the kept output) from the cut layer's maps (a copy goes
        in: the graph may work in place)."""
        if self.tokens is None:
            return self.rest(maps.clone())
        prefix, *carried = self._kept
        if len(prefix) != len(maps):
            raise RuntimeError("head() needs the maps of the last forward_features() batch")
        t = torch.cat([prefix, maps.flatten(2).transpose(1, 2)], dim=1)
        return self.rest(t, *carried)

    def raw_head(self, maps: torch.Tensor) -> torch.Tensor:
        """Logits through the model's own layers after the cut."""
        return to_logits(self.rest_outputs(maps), self.output, self.out_slice)

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, K]`` from the cut layer's maps."""
        if self.rest is None:
            return self.fc(maps.mean(dim=(2, 3)))
        return self.raw_head(maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@dataclass
class CamCheck:
    ready: bool
    deviation: float | None  # max |head(M) - fit(M)| over the probes, logits (None: unprobed)
    reason: str  # why cam is refused ("" when ready)
    fc: nn.Linear | None


@torch.no_grad()
def pooled_linear_fit(
    head, maps: torch.Tensor, chunk: int = 128
) -> tuple[torch.Tensor, torch.Tensor]:
    """``W [K, C]`` and ``b [K]`` with ``head(M) = W mean_hw(M) + b`` if the head is such a
    map: ``b`` from zero maps, column ``c`` from maps that are 1 in channel ``c``."""
    _, c, h, w = maps.shape
    zero = maps.new_zeros(1, c, h, w)
    bias = head(zero)[0]
    cols = []
    for start in range(0, c, chunk):
        k = min(chunk, c - start)
        unit = maps.new_zeros(k, c, h, w)
        unit[torch.arange(k), torch.arange(start, start + k)] = 1.0
        cols.append(head(unit) - bias)
    return torch.cat(cols).T.contiguous(), bias


@torch.no_grad()
def cam_check(head, maps: torch.Tensor, layer: str, seed: int = 0) -> CamCheck:
    """Is ``head`` a linear map of the globally pooled ``maps [N, C, h, w]``? Probes: the
    maps themselves, their cells shuffled (the same shuffle in every channel), and random
    signed maps; tolerance :data:`CAM_TOLERANCE` relative to the logits' size."""
    n, c, h, w = maps.shape
    if h * w == 1:
        return CamCheck(False, 0.0, f"{layer} is a 1x1 map: there is nothing spatial to map", None)
    gen = torch.Generator().manual_seed(seed)
    weight, bias = pooled_linear_fit(head, maps)
    perm = torch.randperm(h * w, generator=gen).to(maps.device)
    shuffled = maps.flatten(2)[:, :, perm].view_as(maps)
    noise = torch.randn(maps.shape, generator=gen).to(maps) * maps.std().clamp_min(1e-3)
    dev, scale = 0.0, 1.0
    for probe in (maps, shuffled, noise):
        out = head(probe)
        fit = probe.mean(dim=(2, 3)) @ weight.T + bias
        dev = max(dev, float((out - fit).abs().max()))
        scale = max(scale, float(out.abs().max()))
    if dev > CAM_TOLERANCE * scale:
        reason = (
            f"the logits are not a linear map of the globally pooled {layer} (off by up to "
            f"{dev:.3g} logit); cam needs global average pooling then one linear layer"
        )
        return CamCheck(False, dev, reason, None)
    fc = nn.Linear(c, weight.shape[0]).to(maps.device)
    fc.weight.copy_(weight)
    fc.bias.copy_(bias)
    fc.requires_grad_(False)
    return CamCheck(True, dev, "", fc)


def detect_output(raw: torch.Tensor, out_slice: tuple[int, int] | None) -> str:
    """``probabilities`` when the outputs (all, or the slice) are non-negative rows that sum
    to one, ``log-probabilities`` when they exponentiate to such rows, else ``logits``."""
    raw = raw.flatten(1).double()
    parts = [raw]
    if out_slice is not None:
        parts.append(raw[:, out_slice[0] : out_slice[1]])
    for part in parts:
        if part.shape[1] < 2:
            continue
        if (part >= 0).all() and torch.allclose(
            part.sum(1), torch.ones(len(part)).double(), atol=1e-4
        ):
            return "probabilities"
        if (part <= 0).all() and torch.allclose(
            part.exp().sum(1), torch.ones(len(part)).double(), atol=1e-4
        ):
            return "log-probabilities"
    return "logits"
