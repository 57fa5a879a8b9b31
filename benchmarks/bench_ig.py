"""IG rules side by side, in one run: cost, completeness and map accuracy per image.

On the demo's trained model (``--run``, made by ``make demo``) and on the same architecture
with random weights, for the first ``--n`` test faces, from the training split's mean face
(the demo's baseline):

- captum's IntegratedGradients at its defaults (50 Gauss-Legendre nodes);
- our fixed rule (explain's path passes, batch norm folded) at 8, 16, 32, 50 and 100 nodes,
  and at 200 and 400 to find the fixed count that matches the adaptive rule's worst image;
- our adaptive rule (``--ig-n-steps auto``) at tolerances 0.5, 1, 2 and 5%.

Per rule: images/s (one timed run each, nothing else running), path points per image, the
median, 90th percentile and maximum of the relative completeness error
``|sum(map) - (S(x) - S(b))| / |S(x) - S(b)|`` and of the map error against a 1024-node
Gauss-Legendre reference (relative L2), and how many images are capped (adaptive) or
incomplete (fixed: above 5% and 0.05 score units). Then the goals: at the default tolerance
every image complete or flagged in no more time than our fixed 50; at equal maximum
completeness error, adaptive within a third of the path points of the fixed rule that
reaches it.

    .venv/bin/python benchmarks/bench_ig.py --run runs/demo/run --n 16
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from saliency.methods.base import target_scores
from saliency.methods.baselines import make_baseline
from saliency.methods.fold import fold_if_same
from saliency.methods.ig import adaptive, integrated_gradients
from saliency.methods.ig_settings import IGConfig
from saliency.models import outputs
from saliency.models.checkpoint import load_model
from saliency.models.evaluate import evaluation_rows
from saliency.models.loader import ImageSource
from saliency.models.preprocess import normalize, to_unit
from saliency.models.zoo import build_model
from saliency.runs import mean_face

FIXED = (8, 16, 32, 50, 100)
LADDER = (200, 400)  # only to find the fixed count that matches adaptive's worst image
TOLERANCES = (0.005, 0.01, 0.02, 0.05)
REFERENCE = 1024


@dataclass
class Row:
    name: str
    rate: float  # images / s
    steps: float  # path points per image, on average
    completeness: np.ndarray  # [N]
    map_error: np.ndarray | None  # [N]
    flagged: int

    def line(self) -> str:
        c, m = self.completeness, self.map_error
        mp = "" if m is None else (f"{np.median(m):7.4f} {np.percentile(m, 90):7.4f} "
                                   f"{m.max():7.4f}")  # fmt: skip
        head = f"{self.name:18s} {self.rate:7.2f} {self.steps:7.1f}"
        return (f"{head}   {np.median(c):7.4f} {np.percentile(c, 90):7.4f} {c.max():8.4f}   "
                f"{mp:23s}  {self.flagged:3d}")  # fmt: skip


def rel_l2(maps: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    d = (maps.double() - ref.double()).flatten(1).norm(dim=1)
    return (d / ref.double().flatten(1).norm(dim=1)).numpy()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def compare(label: str, model, x, target, base, n: int) -> None:
    """Every rule on one model; prints the table and the goals."""
    from captum.attr import IntegratedGradients

    folded, note = fold_if_same(model, x)
    delta = (target_scores(folded(x), target) - target_scores(folded(base), target)).detach()
    ref = integrated_gradients(folded, x, target, base, REFERENCE)
    rows: dict[str, Row] = {}

    def completeness(maps: torch.Tensor) -> np.ndarray:
        return ((maps.sum(dim=(1, 2)) - delta).abs() / delta.abs()).numpy()

    def captum():
        ig = IntegratedGradients(lambda inp, t: target_scores(model(inp), t))
        one = [slice(i, i + 1) for i in range(n)]  # captum's defaults, one image at a time
        attr = [ig.attribute(x[i], base[i], additional_forward_args=(target[i],)) for i in one]
        return torch.cat(attr).sum(dim=1)

    maps, s = timed(captum)
    rows["captum 50 (defaults)"] = Row("captum 50 (defaults)", n / s, 50, completeness(maps),
                                       rel_l2(maps, ref.maps), 0)  # fmt: skip
    for steps in FIXED + LADDER:
        res, s = timed(lambda steps=steps: integrated_gradients(folded, x, target, base, steps))
        name = f"fixed {steps}"
        rows[name] = Row(name, n / s, steps, res.completeness_error.numpy(),
                         rel_l2(res.maps, ref.maps), int(res.capped.sum()))  # fmt: skip
    for tol in TOLERANCES:
        cfg = IGConfig(tolerance=tol)
        res, s = timed(lambda cfg=cfg: adaptive(folded, x, target, base, cfg))
        name = f"auto {tol:.1%}"
        rows[name] = Row(name, n / s, float(res.steps.float().mean()),
                         res.completeness_error.numpy(), rel_l2(res.maps, ref.maps),
                         int(res.capped.sum()))  # fmt: skip
    rows[f"reference {REFERENCE}"] = Row(f"reference {REFERENCE}", float("nan"), REFERENCE,
                                         ref.completeness_error.numpy(), None, 0)  # fmt: skip

    print(f"\n{label}: {n} images, |S(x) - S(b)| median {delta.abs().median():.3f}, min "
          f"{delta.abs().min():.3f}{'' if note is None else '; ' + note}")  # fmt: skip
    print(f"{'rule':18s} {'img/s':>7s} {'points':>7s}   {'completeness error':^25s}   "
          f"{'map error vs ' + str(REFERENCE):^23s}  flagged")  # fmt: skip
    print(f"{'':18s} {'':7s} {'':7s}   {'median':>7s} {'p90':>7s} {'max':>8s}   "
          f"{'median':>7s} {'p90':>7s} {'max':>7s}")  # fmt: skip
    shown = [f"fixed {s}" for s in FIXED] + [f"auto {t:.1%}" for t in TOLERANCES]
    for name in ["captum 50 (defaults)", *shown, f"fixed {LADDER[0]}", f"fixed {LADDER[1]}",
                 f"reference {REFERENCE}"]:  # fmt: skip
        print(rows[name].line())

    default = rows[f"auto {IGConfig().tolerance:.1%}"]
    f50 = rows["fixed 50"]
    print(f"goal: default tolerance ({IGConfig().tolerance:.0%}) within fixed 50's time: "
          f"{f50.rate / default.rate:.2f}x its time ({default.steps:.1f} vs 50 points), "
          f"{default.flagged} image(s) flagged, the rest complete")  # fmt: skip
    fixed = [(s, rows[f"fixed {s}"]) for s in FIXED + LADDER]
    fixed.append((REFERENCE, rows[f"reference {REFERENCE}"]))
    for tol in TOLERANCES:
        a = rows[f"auto {tol:.1%}"]
        worst = a.completeness.max()
        reach = next((s for s, r in fixed if r.completeness.max() <= worst), None)
        if reach is None:
            print(f"goal: auto {tol:.1%}, worst completeness {worst:.4f}: no fixed count up to "
                  f"{REFERENCE} reaches it ({a.steps:.1f} points per image)")  # fmt: skip
        else:
            print(f"goal: auto {tol:.1%}, worst completeness {worst:.4f}: {a.steps:.1f} points "
                  f"per image, {a.steps / reach:.2f}x fixed {reach}'s (goal <= 0.33)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/demo/run", help="a run with a trained model")
    ap.add_argument("--n", type=int, default=16, help="test faces")
    ap.add_argument("--baseline", default="mean", help="IG baseline (the demo's: mean)")
    args = ap.parse_args()
    model, pre, _, ckpt = load_model(f"{args.run}/checkpoints/best.pt")
    rows, _ = evaluation_rows(ckpt, "test")
    source = ImageSource(rows["path"][: args.n], pre, cache_bytes=0, workers=0)
    images, _ = next(source.batches(np.arange(min(args.n, len(source))), args.n))
    unit = to_unit(images)
    n = len(unit)
    x = normalize(unit, pre)
    face = mean_face(ckpt, pre, torch.device("cpu"), 0) if args.baseline == "mean" else None
    base = make_baseline(args.baseline, unit, pre, face)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {pre.size} px, "
          f"{ckpt.arch}, baseline {args.baseline}")  # fmt: skip
    torch.manual_seed(0)
    random = build_model(ckpt.spec).eval()
    for label, net in (("demo's trained model", model), ("random weights", random)):
        for p in net.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            target = outputs.predicted(net(x))
        compare(label, net, x, target, base.expand_as(x) if base.shape[0] == 1 else base, n)


if __name__ == "__main__":
    main()
