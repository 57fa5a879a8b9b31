"""Does IG pass the cascading randomization check, and does the answer depend on its
baseline? For one trained run: the randomization verdict (all three similarity means below
the threshold with every block re-initialized) of cam, gradcam and IG with each baseline,
on the run's first ``--images`` explained test images, through the same code as
`saliency validate`.

    .venv/bin/python benchmarks/randomization_baselines.py --run RUN [--images 16]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from saliency.analysis import validation as tables
from saliency.analysis.similarity import randomization_verdicts
from saliency.methods.ig import IGConfig
from saliency.methods.names import BASELINES
from saliency.models.checkpoint import load_model
from saliency.models.preprocess import to_unit
from saliency.rundir import best_checkpoint
from saliency.runs import Run, mean_face
from saliency.stages.validate import _subset, passes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--baselines", default=",".join(BASELINES))
    args = ap.parse_args()
    device = torch.device("cpu")
    model, pre, _, ckpt = load_model(best_checkpoint(args.run), device)
    for p in model.parameters():
        p.requires_grad_(False)
    ecfg, _ = Run(args.run).recorded_configs()["test"]
    images, target = _subset(args.run, "test", "cam", args.images, pre)
    face = mean_face(ckpt, pre, device, 0)
    fns = {m: passes.method_maps(m, pre, ecfg.ig, None, ecfg.upsample) for m in ("cam", "gradcam")}
    for b in args.baselines.split(","):
        ig = replace(ecfg.ig, baseline=b) if isinstance(ecfg.ig, IGConfig) else IGConfig(baseline=b)
        fns[f"ig_{b}"] = passes.method_maps("ig", pre, ig, face, ecfg.upsample)
    per_image = passes.cascade(model, to_unit(images).to(device), target, fns, 0)
    verdicts = randomization_verdicts(tables.summarize_steps(per_image, 500, 0), args.threshold)
    cols = ["method", "blocks", "spearman", "spearman_abs", "ssim", "passed"]
    print(verdicts[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
