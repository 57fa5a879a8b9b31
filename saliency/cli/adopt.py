"""``saliency adopt``: a run from your own model (torchvision state dict, module:function,
ONNX, torch.export program, or a trusted pickle)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _floats(text: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3:
        raise argparse.ArgumentTypeError("give three comma-separated values (R,G,B)")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "adopt",
        help="make a run from an external model, so every later command works on it",
        description="Formats: a state dict for the torchvision classifier --arch names "
        "(module. prefixes handled), --function module:function returning an nn.Module "
        "(with --weights a state dict for it), an .onnx file (converted with onnx2torch and "
        "checked against onnxruntime), a .pt2 torch.export program, or a whole pickled "
        "model with --trust-pickle. Maps explain logits: a trailing softmax is cut off.",
    )
    p.add_argument("--out", required=True, type=Path, help="the run folder to create")
    p.add_argument("--weights", type=Path, help="the model file")
    p.add_argument("--classes", help="class names in output order, e.g. female,male")
    p.add_argument("--size", type=int, help="input side in px")
    p.add_argument("--arch", help="torchvision classifier name, e.g. resnet50")
    p.add_argument("--function", help="module:function that returns the nn.Module")
    p.add_argument("--mean", type=_floats, help="R,G,B in 0-1 pixel units (default ImageNet)")
    p.add_argument("--std", type=_floats, help="R,G,B in 0-1 pixel units (default ImageNet)")
    p.add_argument(
        "--output",
        choices=("auto", "logits", "probabilities", "log-probabilities"),
        default="auto",
        help="what the model returns (auto: a cut-off softmax means logits; rows that sum to "
        "one mean probabilities)",
    )
    p.add_argument("--output-slice", help="START:STOP of the gender outputs (FairFace: 7:9)")
    p.add_argument("--target-layer", help="module path or graph node for Grad-CAM (default: "
                   "the last convolutional block)")  # fmt: skip
    p.add_argument("--manifest", type=Path, help="the images the run works on")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow loading a whole pickled model (this runs code from the file)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency.stages import adopt

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else []
    cfg = adopt.AdoptConfig(
        out=str(args.out),
        classes=classes,
        size=args.size,
        weights=str(args.weights) if args.weights else None,
        arch=args.arch,
        function=args.function,
        mean=args.mean,
        std=args.std,
        output=args.output,
        output_slice=args.output_slice,
        target_layer=args.target_layer,
        manifest=str(args.manifest) if args.manifest else None,
        trust_pickle=args.trust_pickle,
    )
    report(adopt.run(cfg))
    return 0


def report(res) -> None:
    """Print what ``adopt`` made of the model."""
    rec = res.record
    print(f"adopted {res.format} model -> {res.run}")
    for note in res.notes:
        print(f"note: {note}")
    sliced = (
        f", outputs {rec['output_slice'][0]}:{rec['output_slice'][1]}"
        if rec["output_slice"]
        else ""
    )
    print(f"classes: {', '.join(res.classes)} ({rec['n_outputs']} logit(s){sliced})")
    print(f"explained: {rec['explained']} ({rec['output_how']})")
    pre = res.pre
    print(f"preprocessing: {pre.size} px, mean {list(pre.mean)}, std {list(pre.std)}")
    grid = "x".join(str(g) for g in rec["grid"])
    print(f"Grad-CAM layer: {rec['layer']} ({rec['channels']} channels, {grid} grid)")
    if rec["cam_ready"]:
        dev = rec["cam_deviation"]
        print(f"CAM-ready: logits = linear map of the pooled layer (max deviation {dev:.2g})")
    else:
        print(f"cam refused: {rec['cam_reason']}; gradcam, ig and ablation work")
    if "onnxruntime_max_abs_difference" in rec:
        diff = rec["onnxruntime_max_abs_difference"]
        print(f"onnx2torch vs onnxruntime: max abs difference {diff:.2g}")
    if res.n_images is None:
        print(f"next: saliency evaluate --run {res.run} --manifest M")
    else:
        print(f"{res.n_images} images; next: saliency evaluate --run {res.run}")
