"""Regression check for refactors: run every stage on a fixed synthetic study, then compare
two such folders file by file.

    .venv/bin/python benchmarks/stage_regression.py make /tmp/reg_before   # old code
    .venv/bin/python benchmarks/stage_regression.py make /tmp/reg_after    # new code
    .venv/bin/python benchmarks/stage_regression.py compare /tmp/reg_before /tmp/reg_after

``make`` runs, through the command line in-process and on the CPU with one thread: synth
(300 faces, brows cue, a B_F cue cell), data check, train (64 px, 3 epochs), evaluate,
explain (cam, gradcam, ig with a blur baseline), average (every group; correct and
incorrect; a contrast), share, ablate (every region), predict, regions (synthetic masks),
and align + regions (landmarks) on scikit-image's astronaut photo.

``compare`` demands the same set of files; CSV and JSON equal after removing what records
time (``time``, ``seconds``, ``argv``, ``saliency_version``) or hashes a file that holds
time or paths (``sha256``, ``checkpoint_sha256``, the resume ``key``), and after replacing
each folder's own path by ``<ROOT>``; arrays (npy, npz, pt tensors) exactly equal; images
equal pixel for pixel. It prints one line per difference and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# what records time, and hashes of files that hold time or their folder's path
TIME_KEYS = {"time", "seconds", "argv", "saliency_version", "train_seconds"}
TIME_KEYS |= {"sha256", "checkpoint_sha256", "key"}


def make(out: Path) -> None:
    import torch
    from PIL import Image
    from skimage import data as skdata

    from saliency.cli import main

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=False)
    d, run = out / "data", out / "run"

    def cli(*argv: str) -> None:
        code = main([str(a) for a in argv])
        if code != 0:
            raise SystemExit(f"`saliency {' '.join(map(str, argv))}` exited {code}")

    cli("synth", "--out", d, "--n", 300, "--size", 64, "--seed", 3, "--cue", "brows=1",
        "--cue-cell", "B_F=0.5", "--workers", 1)  # fmt: skip
    cli("data", "check", d / "manifest.csv")
    cli("train", "--manifest", d / "manifest.csv", "--out", run, "--size", 64, "--epochs", 3,
        "--batch-size", 32, "--workers", 0, "--device", "cpu", "--seed", 0)  # fmt: skip
    cli("evaluate", "--run", run, "--workers", 0, "--device", "cpu")
    cli("explain", "--run", run, "--methods", "cam,gradcam,ig", "--ig-steps", 16,
        "--ig-baseline", "blur", "--workers", 0, "--device", "cpu")  # fmt: skip
    # since issue 29 a plain average call makes every outcome (and the study contrasts are
    # flags, off by default): these flags ask for exactly what the calls before it made
    one = ("--split", "all", "--no-contrast-incorrect", "--no-contrast-cells") \
        if _has_flag("average", "--contrast-cells") else ()  # fmt: skip
    cli("average", "--run", run, "--workers", 0, *one)
    for split in ("correct", "incorrect"):
        cli("average", "--run", run, "--split", split, "--group", "B_F", "--group", "all",
            "--workers", 0, *one[2:])  # fmt: skip
    cli("average", "--run", run, "--group", "B", "--contrast", "A", "--permutations", 200,
        "--workers", 0, *one)  # fmt: skip
    cli("share", "--run", run, "--bootstrap", 200, "--workers", 0)
    cli("ablate", "--run", run, "--region", "all", "--workers", 0, "--device", "cpu")
    if "agreement" in _commands():  # its own stage since issue 17 (ablate wrote it before)
        cli("agreement", "--run", run)
    images = sorted((d / "images").iterdir())[:3]
    cli("predict", "--run", run, *images, "--explain", "gradcam", "--out", out / "predict",
        "--device", "cpu")  # fmt: skip
    cli("regions", "--manifest", d / "manifest.csv", "--out", out / "regions_synth")
    photo = out / "photo"
    photo.mkdir()
    Image.fromarray(skdata.astronaut()).save(photo / "astronaut.png")
    (photo / "manifest.csv").write_text("path,label\nastronaut.png,female\n")
    cli("align", "--manifest", photo / "manifest.csv", "--out", out / "aligned", "--workers", 0)
    cli("regions", "--manifest", out / "aligned" / "manifest.csv", "--out",
        out / "regions_photo", "--source", "landmarks")  # fmt: skip


def _has_flag(command: str, flag: str) -> bool:
    import contextlib
    import io

    from saliency.cli import main

    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        main([command, "--help"])
    return flag in text.getvalue()


def _commands() -> set[str]:
    import contextlib
    import importlib.util
    import io

    from saliency.cli import main

    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        main(["--help"])  # since issue 29 most commands are generated, without a module
    return {
        c
        for c in ("agreement",)
        if importlib.util.find_spec(f"saliency.cli.{c}") or f" {c} " in text.getvalue()
    }


def _clean(value, root: str):
    if isinstance(value, dict):
        return {k: _clean(v, root) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [_clean(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<ROOT>")
    return value


def _csv(path: Path, root: str):
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = df.drop(columns=[c for c in df.columns if c in TIME_KEYS])
    return df.map(lambda v: v.replace(root, "<ROOT>"))


def _arrays_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _same_tree(a, b, root_a: str, root_b: str) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and _arrays_equal(a.numpy(), b.numpy())
    if isinstance(a, dict):
        keys = set(a) - TIME_KEYS
        return keys == set(b) - TIME_KEYS and all(
            _same_tree(a[k], b[k], root_a, root_b) for k in keys
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(
            _same_tree(x, y, root_a, root_b) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, str):
        return isinstance(b, str) and a.replace(root_a, "<ROOT>") == b.replace(root_b, "<ROOT>")
    if isinstance(a, np.ndarray):
        return _arrays_equal(a, b)
    return a == b or (a != a and b != b)


def same_file(a: Path, b: Path, root_a: str, root_b: str) -> str | None:
    """None when equal, else a short reason."""
    suffix = a.suffix.lower()
    if suffix == ".csv":
        x, y = _csv(a, root_a), _csv(b, root_b)
        if list(x.columns) != list(y.columns):
            return f"columns {list(x.columns)} vs {list(y.columns)}"
        if x.shape != y.shape:
            return f"shape {x.shape} vs {y.shape}"
        diff = (x != y).to_numpy()
        if diff.any():
            r, c = np.argwhere(diff)[0]
            return f"{int(diff.sum())} cells differ, first row {r} {x.columns[c]}: " \
                f"{x.iat[r, c]!r} vs {y.iat[r, c]!r}"  # fmt: skip
        return None
    if suffix == ".json":
        x = _clean(json.loads(a.read_text()), root_a)
        y = _clean(json.loads(b.read_text()), root_b)
        return None if x == y else "JSON differs"
    if suffix == ".npy":
        return None if _arrays_equal(np.load(a), np.load(b)) else "array differs"
    if suffix == ".npz":
        x, y = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
        if set(x.files) != set(y.files):
            return f"keys {sorted(x.files)} vs {sorted(y.files)}"
        bad = [k for k in x.files if not _arrays_equal(x[k], y[k])]
        return None if not bad else f"arrays differ: {bad}"
    if suffix == ".pt":
        import torch

        x = torch.load(a, map_location="cpu", weights_only=False)
        y = torch.load(b, map_location="cpu", weights_only=False)
        return None if _same_tree(x, y, root_a, root_b) else "checkpoint differs"
    if suffix in (".png", ".jpg", ".jpeg"):
        from PIL import Image

        x, y = np.asarray(Image.open(a)), np.asarray(Image.open(b))
        return None if _arrays_equal(x, y) else "pixels differ"
    x, y = a.read_bytes(), b.read_bytes()
    x = x.replace(root_a.encode(), b"<ROOT>")
    y = y.replace(root_b.encode(), b"<ROOT>")
    return None if x == y else "bytes differ"


def compare(a: Path, b: Path) -> int:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    problems = [f"only in {a}: {p}" for p in sorted(files_a - files_b)]
    problems += [f"only in {b}: {p}" for p in sorted(files_b - files_a)]
    root_a, root_b = str(a.resolve()), str(b.resolve())
    for rel in sorted(files_a & files_b):
        reason = same_file(a / rel, b / rel, root_a, root_b)
        if reason:
            problems.append(f"{rel}: {reason}")
    for line in problems:
        print(line)
    print(f"{len(files_a & files_b)} files compared, {len(problems)} differences")
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("make")
    m.add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.what == "make":
        make(args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
