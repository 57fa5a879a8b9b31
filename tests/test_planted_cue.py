"""End to end: a net trained on a brows cue, explained by IG, puts its attribution on the brows,
image by image and in the average map that `saliency average` writes."""

import numpy as np
import pandas as pd
import torch

from saliency.analysis.normalize import normalize_maps
from saliency.analysis.share import region_shares
from saliency.data.imageio import read_label_map
from saliency.data.manifest import read_manifest
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate
from saliency.methods.explain import ExplainConfig, explain_run, read_maps
from saliency.methods.registry import IGConfig
from saliency.models.train import TrainConfig, Trainer


def test_ig_with_a_blur_baseline_recovers_the_planted_brows_cue(tmp_path):
    data = tmp_path / "data"
    generate(SynthConfig(n=1200, size=64, seed=9, cues={"brows": 1.0}), data, workers=2)
    cfg = TrainConfig(
        manifest=str(data / "manifest.csv"),
        out=str(tmp_path / "run"),
        size=64,
        epochs=6,
        workers=0,
        early_stopping=10,
    )
    log = Trainer(cfg).fit()
    assert max(r["val_accuracy"] for r in log) > 0.7  # the net has learned something
    ig = IGConfig(n_steps=16, baseline="blur")
    res = explain_run(
        tmp_path / "run",
        ExplainConfig(methods=["ig"], limit=48, ig=ig),
        torch.device("cpu"),
        workers=0,
    )
    maps, index, _ = read_maps(res.out / "ig")
    m = read_manifest(data / "manifest.csv")
    mask_of = dict(zip(m.df["path"], m.df["mask"], strict=True))
    labels = np.stack([read_label_map(m.abspath(mask_of[p])) for p in index["path"]])
    shares = [region_shares(a, b) for a, b in zip(normalize_maps(maps, "max"), labels, strict=True)]
    enrichment = pd.DataFrame([{k: v["enrichment"] for k, v in s.items()} for s in shares]).mean()
    assert enrichment.idxmax() == "brows", enrichment.to_dict()
    assert enrichment["brows"] > 3.0 and enrichment["brows"] > 1.2 * enrichment.drop("brows").max()

    from saliency.cli import main

    assert (
        main(
            [
                "average",
                "--run",
                str(tmp_path / "run"),
                "--method",
                "ig",
                "--group",
                "all",
                "--workers",
                "0",
            ]
        )
        == 0
    )
    avg = np.load(tmp_path / "run" / "averages" / "ig_all_all.npz")
    assert int(avg["count"]) == len(index)
    mean_map = region_shares(avg["mean"], labels)  # regions as frequencies over the 48 faces
    average = pd.Series({k: v["enrichment"] for k, v in mean_map.items()})
    assert average.idxmax() == "brows", average.to_dict()
    assert average["brows"] > 1.2 * average.drop("brows").max()

    # the two independent answers agree: deleting the brows hurts most (interval excluding
    # zero), IG's enrichment singles them out, so `share` calls the brows recovered
    run = str(tmp_path / "run")
    assert main(["ablate", "--run", run, "--limit", "48", "--workers", "0"]) == 0
    ranked = pd.read_csv(tmp_path / "run" / "ablation" / "ranking_blur_delete.csv")
    assert ranked["region"].iloc[0] == "brows" and bool(ranked["excludes_zero"].iloc[0])
    argv = ["share", "--run", run, "--method", "ig", "--split", "all", "--group", "all"]
    assert main([*argv, "--workers", "0"]) == 0
    share = tmp_path / "run" / "share" / "ig_test"
    agreement = pd.read_csv(share / "agreement.csv", keep_default_na=False).iloc[0]
    assert agreement["recovered"] == "brows", agreement.to_dict()
    assert agreement["spearman"] > 0.5
    truth = pd.read_csv(share / "truth.csv").iloc[0]
    assert truth["rank_accuracy_low"] > 3 * truth["chance"]  # far above chance
