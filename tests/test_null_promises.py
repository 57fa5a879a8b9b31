"""Two promises around the null model that no other test checks (audit, section 3, items 1
and 3).

- ``saliency null``'s label shuffle (:func:`saliency.stages.null.null_manifest`): the train
  and val labels are permuted within each split (each split keeps its label counts), test
  and unsplit rows keep their true labels, the images, splits, masks and metadata stay in
  the same order, the draw is seeded, the recorded ``changed`` is the fraction of train and
  val labels that differ, and the true label is kept beside the shuffled one. Checked on a
  hand-made manifest whose splits are interleaved and unbalanced, against counts taken from
  the two files and against the permutation replayed by hand from NumPy's generator.
- Adopted runs: ``null`` refuses them in one line naming what still applies (exit 2, no
  traceback, nothing written); ``validate`` gives randomization and curves with its note and
  no region verdict; the cascading randomization re-initializes an adopted head (``fc`` of a
  CAM-ready net, the layers after the cut otherwise) and nothing else.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from saliency.cli import main
from saliency.data.imageio import write_rgb
from saliency.models.checkpoint import load_model, save_checkpoint
from saliency.models.preprocess import Preprocessing
from saliency.models.randomize import cascade_blocks, randomized
from saliency.models.reader_run import reader_checkpoint
from saliency.rundir import best_checkpoint
from saliency.stages.null import TRUE_LABEL, null_manifest

# -- item 1: the label shuffle ------------------------------------------------------------
COUNTS = {  # split -> (female, male): unbalanced, so a swap across splits would show
    "train": (9, 5),
    "val": (3, 5),
    "test": (4, 6),
    "": (2, 1),  # rows without a split are not used for training: they keep their labels
}
N_SHUFFLED = sum(COUNTS["train"]) + sum(COUNTS["val"])


@pytest.fixture(scope="module")
def shuffle_run(tmp_path_factory):
    """A reader checkpoint over a 35-row manifest (8 px images, one mask, an extra column)
    whose splits are interleaved in a seeded order. Returns the run and the manifest."""
    root = tmp_path_factory.mktemp("null_shuffle")
    rows = [{"split": s, "label": c} for s, (f, m) in COUNTS.items()
            for c in ["female"] * f + ["male"] * m]  # fmt: skip
    rows = [rows[k] for k in np.random.default_rng(7).permutation(len(rows))]
    (root / "data" / "images").mkdir(parents=True)
    write_rgb(root / "data" / "mask.png", np.zeros((8, 8), np.uint8))
    for i, r in enumerate(rows):
        r |= {"path": f"images/{i:02d}.png", "group": "AB"[i % 2], "mask": "mask.png", "age": i}
        write_rgb(root / "data" / r["path"], np.full((8, 8, 3), 7 * i, np.uint8))
    manifest = root / "data" / "manifest.csv"
    pd.DataFrame(rows)[["path", "label", "group", "split", "mask", "age"]].to_csv(
        manifest, index=False
    )
    run = root / "run"
    ckpt = reader_checkpoint(manifest, torch.ones(8, 8), Preprocessing(size=8), 1.0)
    save_checkpoint(best_checkpoint(run), ckpt)
    return run, manifest


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype=str)


def test_null_manifest_shuffles_within_train_and_val_and_keeps_everything_else(shuffle_run):
    """Each shuffled split keeps its label counts; test and unsplit labels, the images (as
    files), splits, groups, masks and extra columns are the source's, row by row; the true
    label is kept; ``changed`` is the fraction of train+val rows whose label now differs,
    counted here from the two files."""
    run, manifest = shuffle_run
    path, info = null_manifest(run, seed=0)
    src, null = read(manifest), read(path)
    assert path == run / "null" / "manifest.csv" and len(null) == len(src)

    def files(df, folder, col):
        return [str((folder / p).resolve()) for p in df[col]]

    for col in ("path", "mask"):  # relative to each manifest's own folder
        assert files(null, path.parent, col) == files(src, manifest.parent, col), col
    for col in ("split", "group", "age"):
        assert list(null[col]) == list(src[col]), col
    assert list(null[TRUE_LABEL]) == list(src["label"])
    for split, (f, m) in COUNTS.items():
        rows = src["split"] == split
        got = null.loc[rows, "label"]
        assert (got == "female").sum() == f and (got == "male").sum() == m, split
        if split not in ("train", "val"):
            assert list(got) == list(src.loc[rows, "label"]), split
    used = src["split"].isin(["train", "val"])
    differ = (null.loc[used, "label"] != src.loc[used, "label"]).sum()
    assert differ > 0  # the permutation is not the identity
    assert info["changed"] == pytest.approx(differ / N_SHUFFLED)
    assert info["n_shuffled"] == N_SHUFFLED and info["seed"] == 0
    assert json.loads((path.parent / "null.json").read_text()) == info


def test_null_manifest_is_seeded_and_is_the_permutation_replayed_by_hand(shuffle_run):
    """The same seed writes the same bytes; another seed another labelling. Both are
    ``labels[idx] = labels[rng.permutation(idx)]`` per split, train then val, from
    ``numpy.random.default_rng(seed)``: the draw the docstring promises, replayed here."""
    run, manifest = shuffle_run
    src = read(manifest)
    written = {}
    for seed in (0, 1, 0):
        path, _ = null_manifest(run, seed)
        data = path.read_bytes()
        if seed in written:
            assert data == written[seed]  # resumable: rebuilt byte for byte
        written[seed] = data
        labels = src["label"].to_numpy(dtype=object).copy()
        rng = np.random.default_rng(seed)
        for split in ("train", "val"):
            idx = np.flatnonzero(src["split"].to_numpy() == split)
            labels[idx] = labels[rng.permutation(idx)]
        assert list(read(path)["label"]) == list(labels), seed
    first = read(run / "null" / "manifest.csv")  # seed 0 was written last
    null_manifest(run, 1)
    second = read(run / "null" / "manifest.csv")
    assert list(first["label"]) != list(second["label"])


# -- K nulls: `saliency null --seeds K` ---------------------------------------------------
def test_seeds_k_trains_k_nulls_of_consecutive_permutation_seeds_and_the_record_lists_them(
    tiny_run, tmp_path, capsys
):
    """``--seed 3 --seeds 2``: ``RUN/null/`` is permutation seed 3 and ``RUN/nulls/seed4/``
    seed 4, each its own shuffle of the run's labels (replayed as in the test above) and
    its own training; ``config.json`` records both settings, so readers list the two
    folders; a later ``--seeds 1`` makes them list ``RUN/null/`` alone again."""
    from saliency.cli import main
    from saliency.rundir import null_dirs
    from saliency.runs import Run

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("saliency", "ablation", "share"))
    w = ["--run", str(run), "--workers", "0", "--device", "cpu", "--epochs", "1"]
    assert main(["null", *w, "--seed", "3", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "null model (seed 3)" in out and "null model (seed 4)" in out
    folders = [run / "null", run / "nulls" / "seed4"]
    assert null_dirs(run) == folders and [r.path for r in Run(run).nulls] == folders
    src = read(json.loads((run / "null" / "null.json").read_text())["source_manifest"])
    labelled = []
    for folder, seed in zip(folders, (3, 4), strict=True):
        assert json.loads((folder / "null.json").read_text())["seed"] == seed
        assert (folder / "checkpoints" / "best.pt").is_file()
        labels = src["label"].to_numpy(dtype=object).copy()
        rng = np.random.default_rng(seed)
        for split in ("train", "val"):
            idx = np.flatnonzero(src["split"].to_numpy() == split)
            labels[idx] = labels[rng.permutation(idx)]
        got = list(read(folder / "manifest.csv")["label"])
        assert got == list(labels), seed
        labelled.append(got)
    assert labelled[0] != labelled[1]
    cfg = json.loads((run / "config.json").read_text())["commands"]["null"]["config"]
    assert cfg["seed"] == 3 and cfg["seeds"] == 2 and len(cfg["stopped"]) == 2
    assert main(["null", *w, "--seed", "3"]) == 0  # resumes RUN/null/; K back to 1
    assert null_dirs(run) == [run / "null"]


# -- item 3: adopted runs ---------------------------------------------------------------
NETS = """
import torch
from torch import nn

def camready():
    torch.manual_seed(11)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2),
    )

def flathead():
    torch.manual_seed(12)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 16 * 16, 2),
    )
"""
MODULE = "null_promises_nets"


@pytest.fixture(scope="module")
def adopted(tmp_path_factory, brows_world):
    """Two runs adopted with ``--function`` over 8 faces of the brows world (test split,
    masks, 64 px, copied with relative paths): a CAM-ready net and a flatten + linear head.
    The module stays importable while the tests run (an adopted function is rebuilt by
    importing it)."""
    root = tmp_path_factory.mktemp("null_adopted")
    (root / f"{MODULE}.py").write_text(textwrap.dedent(NETS))
    faces = pd.read_csv(brows_world / "manifest.csv", keep_default_na=False).head(8)
    for p in [*faces["path"], "mask.png"]:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(brows_world / p, root / p)
    faces.to_csv(root / "faces.csv", index=False)
    sys.path.insert(0, str(root))
    runs = {}
    try:
        for name in ("camready", "flathead"):
            runs[name] = root / name
            assert main(["adopt", "--out", str(runs[name]), "--function", f"{MODULE}:{name}",
                         "--classes", "female,male", "--size", "64",
                         "--manifest", str(root / "faces.csv")]) == 0  # fmt: skip
        yield runs
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(MODULE, None)


def test_null_refuses_an_adopted_run_in_one_line_naming_what_still_applies(adopted, capsys):
    """No training recipe, no null: exit 2, one line on stderr that says why and that
    validate's randomization and perturbation checks still run; nothing written."""
    capsys.readouterr()
    run = adopted["camready"]
    assert main(["null", "--run", str(run), "--workers", "0", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("saliency null: error: ") and "adopted model" in lines[0]
    assert "`saliency validate` still runs the randomization and perturbation" in lines[0]
    assert not (run / "null").exists()


def test_validate_on_an_adopted_run_gives_randomization_and_curves_without_verdicts(
    adopted, capsys
):
    """The adopted note, in the output and validation.json; no lift and no recovered region
    for any method; a randomization verdict and a curve verdict for each method, with the
    adopted head (fc) re-initialized first."""
    run = adopted["camready"]
    r = ["--run", str(run), "--workers", "0", "--device", "cpu"]
    assert main(["explain", *r, "--methods", "cam,gradcam"]) == 0
    capsys.readouterr()
    assert main(["validate", *r, "--randomization-images", "2", "--curve-images", "8",
                 "--curve-steps", "4", "--bootstrap", "200", "--no-floor"]) == 0  # fmt: skip
    note = "an adopted model has none (no training recipe to retrain it with shuffled labels)"
    assert note in capsys.readouterr().out
    out = run / "validation"
    assert any(note in n for n in json.loads((out / "validation.json").read_text())["notes"])
    v = pd.read_csv(out / "verdicts.csv", keep_default_na=False)
    assert sorted(v["method"]) == ["cam", "gradcam"]
    assert (v["recovered"] == "").all() and (v["lift_leader"] == "").all()
    assert (v["verdict"] == "no null model").all() and (v["correct"] == "").all()
    assert (out / "lift.csv").read_text().strip() == ""  # no null, no floor: no lift
    rv = pd.read_csv(out / "randomization_verdicts.csv").set_index("method")
    assert sorted(rv.index) == ["cam", "gradcam"] and rv["passed"].notna().all()
    model = load_model(best_checkpoint(run))[0]
    blocks = [name for name, _ in cascade_blocks(model)]
    per = pd.read_csv(out / "randomization.csv")
    assert blocks[0] == "fc"
    assert list(per.drop_duplicates("step").sort_values("step")["block"]) == blocks
    curves = pd.read_csv(out / "curves_summary.csv").set_index("method")
    assert sorted(curves.index) == ["cam", "gradcam", "random"]
    assert curves.loc[["cam", "gradcam"], "passed"].notna().all()


@pytest.mark.parametrize(("name", "head"), [("camready", "fc"), ("flathead", "head")])
def test_randomization_reinitializes_an_adopted_head_and_nothing_else(adopted, name, head):
    """Step 1 of the cascade re-initializes the adopted head: every head tensor differs from
    the adopted weights, and every block listed after it (not yet randomized) is equal."""
    model = load_model(best_checkpoint(adopted[name]))[0]
    blocks = cascade_blocks(model)
    assert blocks[0][0] == head and len(blocks) >= 3, [b for b, _ in blocks]
    copy = randomized(model, 1, seed=0)
    after = dict(cascade_blocks(copy))
    for module, new in zip(blocks[0][1], after[head], strict=True):
        old, fresh = module.state_dict(), new.state_dict()
        assert old and all(not torch.equal(old[k], fresh[k]) for k in old), name
    for block, modules in blocks[1:]:
        for module, same in zip(modules, after[block], strict=True):
            a, b = module.state_dict(), same.state_dict()
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), block
