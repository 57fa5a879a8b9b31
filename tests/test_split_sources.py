"""A study whose splits come from three data sets (the MORPH study's protocol: train on one,
validate on a second, test on a third), each read by its own importer into one manifest."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from saliency.cli import main
from saliency.configs.data import DataConfig
from saliency.data.manifest import read_manifest


@pytest.fixture
def sources(tmp_path, synth_tiny):
    """synth_tiny's 160 faces as three CSV data sets in three layouts: 96 train, 32 val,
    32 test; the val set's own split column says train (its split is the table's), the test
    set's columns have other names and its labels are codes."""
    m = read_manifest(synth_tiny / "manifest.csv")
    paths = [str(m.abspath(p).resolve()) for p in m.df["path"]]
    df = m.df.assign(path=paths)[["path", "label", "group"]]
    df.iloc[:96].to_csv(tmp_path / "a.csv", index=False)
    df.iloc[96:128].assign(split="train").to_csv(tmp_path / "b.csv", index=False)
    test = df.iloc[128:].rename(columns={"path": "file", "label": "sex", "group": "race"})
    test["sex"] = test["sex"].map({"female": "F", "male": "M"})
    test.to_csv(tmp_path / "c.csv", index=False)
    return tmp_path, df


def test_a_three_source_study_imports_trains_and_evaluates(sources, capsys):
    folder, df = sources
    (folder / "study.toml").write_text(
        '[study]\nout = "%s"\ndevice = "cpu"\nworkers = 0\n'
        '[data]\nsource = "splits"\n'
        '[data.splits.train]\nformat = "csv"\npath = "a.csv"\n'
        '[data.splits.val]\nformat = "csv"\npath = "b.csv"\n'
        '[data.splits.test]\nformat = "csv"\npath = "c.csv"\npath_col = "file"\n'
        'label_col = "sex"\ngroup_col = "race"\nlabel_map = { F = "female", M = "male" }\n'
        "[train]\nsize = 32\nepochs = 1\nbatch_size = 32\n[evaluate]\n" % (folder / "out")
    )  # the paths relative to the TOML file
    assert main(["run", str(folder / "study.toml"), "--only", "data", "train", "evaluate"]) == 0
    out = capsys.readouterr().out
    assert "train: imported 96 rows" in out and "test: imported 32 rows" in out
    manifest = read_manifest(folder / "out" / "data" / "manifest.csv")
    got = manifest.df.assign(path=[str(manifest.abspath(p).resolve()) for p in manifest.df["path"]])
    for split, rows in (("train", df.iloc[:96]), ("val", df.iloc[96:128]), ("test", df.iloc[128:])):
        part = got[got["split"] == split]
        assert part["path"].tolist() == rows["path"].tolist(), split  # its source's own rows
        assert part["label"].tolist() == rows["label"].tolist(), split  # labels mapped back
    metrics = json.loads((folder / "out" / "run" / "eval" / "test" / "metrics.json").read_text())
    assert metrics["n"] == 32
    log = pd.read_csv(folder / "out" / "run" / "train_log.csv")
    assert len(log) == 1


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        ({"train": {"format": "csv", "path": "a"}}, "data.splits.val"),
        ({"train": {"format": "csv", "path": "a"}, "dev": {}}, "data.splits.dev"),
        ({"train": {"format": "web", "path": "a"}, "val": {}}, "needs format"),
        (
            {
                "train": {"format": "csv", "path": "a", "colour": 1},
                "val": {"format": "csv", "path": "b"},
            },
            "data.splits.train: unknown setting 'colour'",
        ),  # fmt: skip
    ],
)
def test_a_bad_split_table_is_one_line(splits, message):
    with pytest.raises(ValueError, match=message):
        DataConfig(out="o", source="splits", splits=splits)


def test_data_does_not_apply_to_a_splits_study(capsys):
    from pathlib import Path

    ref = Path(__file__).resolve().parent.parent / "analyses" / "ref_morph_resnet50.toml"
    assert main(["run", str(ref), "--data", "/somewhere"]) == 2
    assert "does not apply to data.source = 'splits'" in capsys.readouterr().err
