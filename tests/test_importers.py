"""Each importer on a small fixture that reproduces its data set's real layout."""

import numpy as np
import pandas as pd
import pytest

from saliency.cli import main
from saliency.data.importers import ImportOptions, import_dataset
from saliency.data.manifest import read_manifest

CELEBA_ATTRS = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()
FIVE = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
    "rightmouth_x rightmouth_y".split()
)


def test_imagefolder_with_kaggle_split_folders(tmp_path, tiny_image, capsys):
    src = tmp_path / "gender"
    for split in ("Training", "Validation"):
        for cls in ("female", "male"):
            for i in range(2):
                tiny_image(src / split / cls / f"{i}.jpg")
    (src / "Training" / "male" / "notes.txt").write_text("x")
    out = tmp_path / "out" / "manifest.csv"
    assert main(["data", "import", "--format", "imagefolder", str(src), "--out", str(out)]) == 0
    m = read_manifest(out)
    assert len(m) == 8 and m.classes == ["female", "male"]
    assert sorted(set(m.df["split"])) == ["train", "val"]
    assert all(p.is_file() for p in m.abspaths())  # relative to the manifest's folder
    assert m.df["path"].iloc[0].startswith("../gender/")
    skipped = pd.read_csv(tmp_path / "out" / "manifest_skipped.csv")
    assert skipped["reason"].str.contains("not an image").tolist() == [True]
    assert "skipped 1 rows" in capsys.readouterr().out


def test_imagefolder_without_split_folders(tmp_path, tiny_image):
    for cls in ("female", "male"):
        tiny_image(tmp_path / "src" / cls / "sub" / "x.png")
    res = import_dataset("imagefolder", tmp_path / "src", tmp_path / "m.csv")
    assert sorted(res.df["label"]) == ["female", "male"] and set(res.df["split"]) == {""}


def _celeba(tmp_path, tiny_image, as_csv, nested):
    src = tmp_path / "celeba"
    img_dir = src / "img_align_celeba" / ("img_align_celeba" if nested else "")
    names = [f"{i:06d}.jpg" for i in range(1, 6)]
    for i, n in enumerate(names):
        tiny_image(img_dir / n, size=(178, 218), seed=i)
    male = [1, -1, 1, -1, 1]
    attrs = np.full((5, 40), -1)
    attrs[:, CELEBA_ATTRS.index("Male")] = male
    part = [0, 0, 1, 2, 2]
    lms = np.arange(50).reshape(5, 10) + 60
    if as_csv:
        a = pd.DataFrame(attrs, columns=CELEBA_ATTRS)
        a.insert(0, "image_id", names)
        a.to_csv(src / "list_attr_celeba.csv", index=False)
        pd.DataFrame({"image_id": names, "partition": part}).to_csv(
            src / "list_eval_partition.csv", index=False
        )
        lm = pd.DataFrame(lms, columns=FIVE)
        lm.insert(0, "image_id", names)
        lm.to_csv(src / "list_landmarks_align_celeba.csv", index=False)
    else:
        lines = ["5", " ".join(CELEBA_ATTRS)]
        lines += [
            f"{n} " + " ".join(f"{v:2d}" for v in row) for n, row in zip(names, attrs, strict=True)
        ]
        lines.append("000006.jpg 1 -1")  # malformed: too few values
        (src / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
        (src / "list_eval_partition.txt").write_text(
            "".join(f"{n} {p}\n" for n, p in zip(names, part, strict=True))
        )
        lm_lines = ["5", "  ".join(FIVE)]
        lm_lines += [f"{n}    " + "   ".join(map(str, r)) for n, r in zip(names, lms, strict=True)]
        (src / "list_landmarks_align_celeba.txt").write_text("\n".join(lm_lines) + "\n")
    return src


@pytest.mark.parametrize(("as_csv", "nested"), [(False, False), (True, True)])
def test_celeba_text_and_csv_releases(tmp_path, tiny_image, as_csv, nested):
    src = _celeba(tmp_path, tiny_image, as_csv, nested)
    res = import_dataset("celeba", src, tmp_path / "m.csv")
    df = res.df
    assert df["label"].tolist() == ["male", "female", "male", "female", "male"]
    assert df["split"].tolist() == ["train", "train", "val", "test", "test"]
    assert df["lefteye_x"].astype(int).tolist() == [60, 70, 80, 90, 100]
    assert "Eyeglasses" in df.columns
    if not as_csv:
        assert res.skipped["reason"].str.contains("malformed").sum() == 1


def test_utkface_names_and_broken_names(tmp_path, tiny_image):
    src = tmp_path / "UTKFace"
    good = [
        "25_0_1_20170116174525125.jpg.chip.jpg",
        "30_1_0_20170117120000000.jpg.chip.jpg",
        "8_1_3_20170109150557335.jpg",
    ]
    bad = [
        "61_1_20170109142408075.jpg.chip.jpg",
        "39_1_20170116174525125.jpg.chip.jpg",
        "x_1_2_20170116174525125.jpg",
        "20_7_0_20170116174525125.jpg",
    ]
    for i, n in enumerate(good + bad):
        tiny_image(src / n, seed=i)
    res = import_dataset("utkface", src, tmp_path / "m.csv")
    df = res.df.sort_values("age")
    assert df["label"].tolist() == ["female", "male", "female"]
    assert df["group"].tolist() == ["Indian", "Black", "White"]
    assert df["age"].astype(int).tolist() == [8, 25, 30]
    assert len(res.skipped) == 4
    assert res.skipped["reason"].str.contains("3 fields").sum() == 2


def test_fairface_splits_and_group_names(tmp_path, tiny_image):
    src = tmp_path / "fairface"
    for i in range(3):
        tiny_image(src / "train" / f"{i + 1}.jpg", seed=i)
    tiny_image(src / "val" / "1.jpg")
    pd.DataFrame(
        {
            "file": ["train/1.jpg", "train/2.jpg", "train/3.jpg"],
            "age": ["20-29", "3-9", "50-59"],
            "gender": ["Male", "Female", "Female"],
            "race": ["East Asian", "Black", "Latino_Hispanic"],
            "service_test": ["True", "False", "True"],
        }
    ).to_csv(src / "fairface_label_train.csv", index=False)
    pd.DataFrame(
        {
            "file": ["val/1.jpg", "val/2.jpg"],
            "age": ["20-29", "20-29"],
            "gender": ["Female", "Male"],
            "race": ["White", "Indian"],
            "service_test": ["False", "False"],
        }
    ).to_csv(src / "fairface_label_val.csv", index=False)
    res = import_dataset(
        "fairface", src, tmp_path / "m.csv", ImportOptions(split_map={"val": "test"})
    )
    df = res.df
    assert df["group"].tolist() == ["East_Asian", "Black", "Latino_Hispanic", "White"]
    assert df["split"].tolist() == ["train", "train", "train", "test"]
    assert df["age"].tolist()[0] == "20-29"
    assert res.skipped["reason"].tolist() == ["image file not found"]  # val/2.jpg


def test_morph_race_codes_give_the_reference_cells(tmp_path, tiny_image):
    src = tmp_path / "morph"
    photos = [f"Album2/{i:06d}_0{i}M30.JPG" for i in range(5)]
    for i, p in enumerate(photos):
        tiny_image(src / p, seed=i)
    pd.DataFrame(
        {
            "id_num": range(5),
            "picture_num": 0,
            "dob": "1/1/1970",
            "doa": "1/1/2000",
            "race": ["B", "B", "W", "W", "X"],
            "gender": ["F", "M", "F", "M", "F"],
            "facial_hair": 0,
            "age": [30, 31, 32, 33, 34],
            "age_diff": 0,
            "glasses": 0,
            "photo": photos,
        }
    ).to_csv(src / "morph_2008_nonCommercial.csv", index=False)
    out = tmp_path / "m.csv"
    assert (
        main(
            [
                "data",
                "import",
                "--format",
                "morph",
                str(src / "morph_2008_nonCommercial.csv"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    m = read_manifest(out)
    cells = (m.df["group"] + "_" + m.df["label"].str[0].str.upper()).tolist()
    assert cells == ["AA_F", "AA_M", "C_F", "C_M"]
    skipped = pd.read_csv(tmp_path / "m_skipped.csv")
    assert skipped["reason"].str.contains("group 'X' not in the group map").tolist() == [True]


def test_csv_with_column_maps_and_validation_carving(tmp_path, tiny_image):
    for i in range(20):
        tiny_image(tmp_path / "imgs" / f"{i}.png", seed=i)
    pd.DataFrame(
        {
            "file": [f"{i}.png" for i in range(20)],
            "sex": [i % 2 for i in range(20)],
            "part": ["tr"] * 20,
        }
    ).to_csv(tmp_path / "t.csv", index=False)
    res = import_dataset(
        "csv",
        tmp_path / "t.csv",
        tmp_path / "m.csv",
        ImportOptions(
            path_col="file",
            label_col="sex",
            split_col="part",
            label_map={"0": "male", "1": "female"},
            split_map={"tr": "train"},
            images=tmp_path / "imgs",
            val_fraction=0.2,
            seed=1,
        ),
    )
    assert (res.df["split"] == "val").sum() == 4  # 20% of each 10-image cell
    assert res.df.groupby("label")["split"].apply(lambda s: (s == "val").sum()).tolist() == [2, 2]


def test_per_cell_keeps_a_seeded_sample_of_each_cell_after_the_carve_out(tmp_path, tiny_image):
    for i in range(30):
        tiny_image(tmp_path / "imgs" / f"{i}.png", seed=i)
    source = {"file": [f"{i}.png" for i in range(30)], "sex": [i % 2 for i in range(30)],
              "part": ["tr"] * 24 + ["te"] * 6}  # fmt: skip
    pd.DataFrame(source).to_csv(tmp_path / "t.csv", index=False)

    def run(seed):
        opts = ImportOptions(path_col="file", label_col="sex", split_col="part",
                             label_map={"0": "male", "1": "female"},
                             split_map={"tr": "train", "te": "test"}, images=tmp_path / "imgs",
                             val_fraction=0.25, seed=seed, per_cell=4)  # fmt: skip
        return import_dataset("csv", tmp_path / "t.csv", tmp_path / "m.csv", opts).df

    df = run(1)
    sizes = df.groupby(["split", "label"]).size().to_dict()
    # per label: 12 train images, 3 carved to val (kept whole, 3 <= 4), 9 left -> 4; test 3
    assert sizes == {("test", "female"): 3, ("test", "male"): 3, ("train", "female"): 4,
                     ("train", "male"): 4, ("val", "female"): 3, ("val", "male"): 3}  # fmt: skip
    numbers = df["path"].str.extract(r"(\d+)\.png")[0].astype(int).tolist()
    assert numbers == sorted(numbers)  # the source's order is kept
    assert df["path"].tolist() == run(1)["path"].tolist()  # seeded
    assert df["path"].tolist() != run(2)["path"].tolist()


def test_unknown_column_is_a_clear_error(tmp_path):
    pd.DataFrame({"file": ["a"], "sex": [0]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match="no column 'path'.*--path-col"):
        import_dataset("csv", tmp_path / "t.csv", tmp_path / "m.csv")
