"""``saliency average``: average maps and faces per selection, with optional contrasts."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from saliency.analysis.names import NORMS, OUTCOMES

if TYPE_CHECKING:
    from saliency.analysis.selection import Selection


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "average",
        help="average maps per split, group and class",
        description="Average stored maps after an explicit per-image "
        "normalization; e.g. --split incorrect --group AA_F.",
    )
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--split", default="all", help="all, correct or incorrect predictions")
    p.add_argument(
        "--group",
        action="append",
        help="subgroup, cell (AA_F) or all; "
        "repeatable; default: all, every subgroup and every cell",
    )
    p.add_argument("--class", dest="label", help="only this class")
    p.add_argument("--method", action="append", help="repeatable; default: every explained")
    p.add_argument(
        "--norm",
        choices=NORMS,
        default="max",
        help="per-image normalization before averaging (default max: m / max|m|)",
    )
    p.add_argument(
        "--contrast",
        help="compare with another selection: a split (correct, "
        "incorrect, all) or a group/cell, with a max-t permutation test",
    )
    p.add_argument("--permutations", type=int, default=1000)
    p.add_argument("--maps-split", default="test", help="which explained data split")
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=run)


def _contrast(sel: Selection, text: str, groups: list[str], classes: list[str]) -> Selection:
    from saliency.data.cells import parse_group

    if text in OUTCOMES:
        return replace(sel, outcome=text)
    parse_group(text, groups, classes)  # raises with the valid values
    return replace(sel, group=text)


def _write_npz(path: Path, **arrays) -> None:
    import numpy as np

    from saliency.data.atomic import atomic_write

    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from saliency.analysis.average import (
        merge_partitions,
        partition_faces,
        partition_ids,
        partition_moments,
    )
    from saliency.analysis.normalize import normalize_maps
    from saliency.analysis.permutation import max_t_test
    from saliency.analysis.selection import (
        Selection,
        check_class,
        check_outcome,
        default_groups,
        select,
    )
    from saliency.cli.chance import warn_if_at_chance
    from saliency.data.cells import parse_group, present_groups
    from saliency.methods.explain import explained_methods, read_maps
    from saliency.models.preprocess import Preprocessing
    from saliency.rundir import record
    from saliency.viz.average import average_figure, contrast_figure
    from saliency.viz.style import save_figure

    run_dir = args.run
    warn_if_at_chance(run_dir)
    check_outcome(args.split)
    methods = explained_methods(run_dir, args.maps_split, args.method)
    out = run_dir / "averages"
    summary, faces_cache = [], {}
    for method in methods:
        maps, index, meta = read_maps(run_dir / "saliency" / args.maps_split / method)
        classes = meta["classes"]
        label = check_class(args.label, classes)
        groups = args.group or default_groups(index, classes)
        for g in groups:
            parse_group(g, present_groups(index), classes)
        ids = partition_ids(index)
        moments = partition_moments(maps, ids, args.norm)
        key = tuple(index["path"])
        if key not in faces_cache:
            root = Path(meta["manifest"]).parent
            pre = Preprocessing.from_dict(meta["preprocessing"])
            faces_cache[key] = partition_faces(
                [str(root / p) for p in index["path"]], ids, pre, args.workers
            )
        faces = faces_cache[key]
        for g in groups:
            sel = Selection(args.split, g, label)
            mask = select(index, sel, classes)
            if not mask.any():
                print(f"{method}: empty selection ({sel.describe()}); nothing written")
                continue
            mom, face = merge_partitions(np.unique(ids[mask]), moments, faces)
            name = sel.name(method, args.maps_split)
            arrays = {
                "mean": mom.mean,
                "std": mom.std,
                "count": mom.n,
                "mean_face": face,
                "normalization": args.norm,
                "method": method,
                "selection": sel.describe(),
                "units": meta["units"],
                "upsampling": (meta.get("upsampling") or {}).get("rule", "none (pixel maps)"),
            }
            title = f"{method}: {sel.describe()}"
            if meta.get("upsampling"):
                title += f" ({meta['upsampling']['rule']} upsampling)"
            row = {
                "method": method,
                "selection": name.split("_", 1)[1],
                "n": mom.n,
                "peak_yx": tuple(
                    int(v) for v in np.unravel_index(np.argmax(mom.mean), mom.mean.shape)
                ),
            }
            if args.contrast:
                other = _contrast(sel, args.contrast, present_groups(index), classes)
                mask_b = select(index, other, classes)
                if mask_b.sum() < 2 or mask.sum() < 2:
                    print(
                        f"{method}: contrast {sel.describe()} vs {other.describe()} needs at "
                        f"least 2 images on each side ({mask.sum()} and {mask_b.sum()})"
                    )
                else:
                    a = normalize_maps(maps[np.flatnonzero(mask)], args.norm)
                    b = normalize_maps(maps[np.flatnonzero(mask_b)], args.norm)
                    res = max_t_test(
                        a.reshape(len(a), -1), b.reshape(len(b), -1), args.permutations
                    )
                    shape = mom.mean.shape
                    sig = (res.p_fwe < 0.05).reshape(shape)
                    arrays.update(
                        contrast=other.describe(),
                        difference=res.difference.reshape(shape),
                        t=res.t.reshape(shape),
                        p_fwe=res.p_fwe.reshape(shape),
                        contrast_count=int(len(b)),
                    )
                    name = f"{name}_vs_{args.contrast}"
                    save_figure(
                        contrast_figure(
                            face,
                            res.difference.reshape(shape),
                            sig,
                            f"{method}: {sel.describe()} minus {other.describe()}",
                            len(a),
                            len(b),
                        ),
                        out / f"{name}_contrast.png",
                    )
                    row["significant_pixels"] = int(sig.sum())
            _write_npz(out / f"{name}.npz", **arrays)
            save_figure(
                average_figure(face, mom.mean, mom.n, title, args.norm), out / f"{name}.png"
            )
            summary.append(row)
    record(run_dir, "average", {k: v for k, v in vars(args).items() if k != "func"})
    if not summary:
        print("nothing written: every selection was empty")
        return 1
    table = pd.DataFrame(summary)
    print(table.to_string(index=False))
    print(f"-> {out}")
    return 0
