"""Manifests: reading and writing, class order, cell keys, group specs, landmark columns."""

import numpy as np
import pandas as pd
import pytest

from saliency.data.cells import cell_column, cell_name, class_keys, parse_group
from saliency.data.manifest import (
    LANDMARK_COLUMNS,
    ManifestError,
    landmark_frame,
    read_manifest,
    write_manifest,
)


def test_roundtrip_keeps_core_metadata_and_landmarks(tmp_path):
    pts = np.random.default_rng(0).uniform(0, 60, (3, 68, 2))
    df = pd.concat(
        [
            pd.DataFrame(
                {
                    "path": ["a.png", "b.png", "c.png"],
                    "label": ["male", "female", "male"],
                    "group": ["AA", "C", ""],
                    "age": [31, 40, 22],
                }
            ),
            landmark_frame(pts),
        ],
        axis=1,
    )
    path = write_manifest(df, tmp_path / "m.csv")
    m = read_manifest(path)
    assert list(m.df.columns[:4]) == ["path", "label", "group", "split"]
    assert m.classes == ["female", "male"]  # alphabetical
    assert list(m.label_index()) == [1, 0, 1]
    assert m.df["age"].tolist() == ["31", "40", "22"]  # metadata kept
    np.testing.assert_allclose(m.landmarks(), pts, atol=1e-3)
    assert m.abspath("a.png") == tmp_path / "a.png"


def test_partial_landmark_columns_and_missing_required_are_errors(tmp_path):
    (tmp_path / "a.csv").write_text("path,label,x0,y0\na.png,male,1,2\n")
    with pytest.raises(ManifestError, match="landmark columns"):
        read_manifest(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("file,label\na.png,male\n")
    with pytest.raises(ManifestError, match="'path'"):
        read_manifest(tmp_path / "b.csv")


def test_given_class_order_is_kept_and_unknown_labels_rejected(tmp_path):
    write_manifest(pd.DataFrame({"path": ["a", "b"], "label": ["m", "f"]}), tmp_path / "m.csv")
    assert read_manifest(tmp_path / "m.csv", classes=["m", "f"]).classes == ["m", "f"]
    with pytest.raises(ManifestError, match="not among"):
        read_manifest(tmp_path / "m.csv", classes=["m", "x"])


def test_cell_keys_use_initials_and_full_names_on_a_clash():
    assert class_keys(["female", "male"]) == {"female": "F", "male": "M"}
    assert class_keys(["man", "male"]) == {"man": "man", "male": "male"}
    assert cell_name("AA", "female", ["female", "male"]) == "AA_F"
    assert cell_name("", "male", ["female", "male"]) == "M"
    df = pd.DataFrame({"group": ["AA", "C", ""], "label": ["female", "male", "male"]})
    assert list(cell_column(df, ["female", "male"])) == ["AA_F", "C_M", "M"]


def test_group_specs_select_the_reference_cells():
    classes, groups = ["female", "male"], ["AA", "C", "Latino_Hispanic"]
    df = pd.DataFrame(
        {
            "group": ["AA", "AA", "C", "Latino_Hispanic"],
            "label": ["female", "male", "female", "female"],
        }
    )
    assert parse_group("all", groups, classes).mask(df).tolist() == [True] * 4
    assert parse_group("AA", groups, classes).mask(df).tolist() == [True, True, False, False]
    assert parse_group("AA_F", groups, classes).mask(df).tolist() == [True, False, False, False]
    spec = parse_group("Latino_Hispanic_F", groups, classes)
    assert (spec.group, spec.label) == ("Latino_Hispanic", "female")
    with pytest.raises(ValueError, match="valid values: all, AA, C, Latino_Hispanic, AA_F"):
        parse_group("XX_F", groups, classes)


def test_landmark_columns_are_in_ibug_order(tmp_path):
    """Landmark i (iBUG 300-W numbering) is the pair of columns x<i>, y<i>, wherever the
    columns stand in the file: a CSV written by hand with them shuffled reads back point i
    at (x<i>, y<i>), and landmark_frame writes x0, y0, ..., x67, y67 in that order."""
    names = [f"{axis}{i}" for i in range(68) for axis in "xy"]
    assert list(LANDMARK_COLUMNS) == names
    pts = np.stack([np.arange(68) + 0.25, 100 + np.arange(68) + 0.5], axis=1)  # [68, 2]
    pts = np.stack([pts, pts + 1000])  # two rows
    shuffled = list(np.random.default_rng(3).permutation(names))
    lines = [",".join(["path", "label", *shuffled])]
    for k, row in enumerate(pts):
        value = {f"{axis}{i}": row[i, j] for i in range(68) for j, axis in enumerate("xy")}
        lines.append(",".join([f"{k}.png", "male", *(f"{value[c]:g}" for c in shuffled)]))
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    np.testing.assert_array_equal(read_manifest(tmp_path / "m.csv").landmarks(), pts)
    frame = landmark_frame(pts)
    assert list(frame.columns) == names
    assert frame.loc[1, "x5"] == 1005.25 and frame.loc[1, "y5"] == 1105.5


def test_landmark_cells_parse_as_numbers_and_a_bad_cell_becomes_nan_alone(tmp_path):
    pts = np.random.default_rng(1).uniform(0, 60, (4, 68, 2))
    df = pd.concat(
        [pd.DataFrame({"path": list("abcd"), "label": ["m", "f", "m", "f"]}), landmark_frame(pts)],
        axis=1,
    )
    path = write_manifest(df, tmp_path / "m.csv")
    clean = read_manifest(path).landmarks()
    np.testing.assert_allclose(clean, pts, atol=5e-4)  # written with 3 decimals
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw.loc[1, "x5"], raw.loc[2, "y7"] = "n/a", ""  # a word and an empty cell
    raw.to_csv(tmp_path / "bad.csv", index=False)
    got = read_manifest(tmp_path / "bad.csv").landmarks()
    assert np.isnan(got[1, 5, 0]) and np.isnan(got[2, 7, 1])
    bad = np.zeros(got.shape, dtype=bool)
    bad[1, 5, 0] = bad[2, 7, 1] = True
    np.testing.assert_array_equal(got[~bad], clean[~bad])  # every other cell as before


def test_an_empty_file_is_a_clear_manifest_error(tmp_path):
    (tmp_path / "m.csv").write_text("")
    with pytest.raises(ManifestError, match="not a UTF-8 CSV with a header row"):
        read_manifest(tmp_path / "m.csv")
