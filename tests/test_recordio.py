"""The ms1mv2 importer and the RecordIO reader on a small .rec/.idx pair in MXNet's format."""

import io
import struct

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from saliency.cli import main
from saliency.data.imageio import ImageReadError, image_size, read_rgb
from saliency.data.importers import ImportOptions, import_dataset
from saliency.data.manifest import read_manifest
from saliency.data.recordio import (
    MAGIC,
    IRHeader,
    RecordError,
    frame,
    pack,
    read_record,
    split_record_path,
    unpack,
)

IDENTITIES = [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2]  # 12 images of 3 identities


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write_rec(folder, images, identities, label_arrays=False):
    """insightface's layout: header record 0, image records 1..n, one record per identity."""
    folder.mkdir(parents=True, exist_ok=True)
    n, ids = len(images), sorted(set(identities))
    payloads = [pack(IRHeader(2, np.array([n + 1, n + 1 + len(ids)], np.float32), 0, 0), b"")]
    for img, ident in zip(images, identities, strict=True):
        head = (IRHeader(2, np.array([ident, 7], np.float32), 0, 0) if label_arrays
                else IRHeader(0, float(ident), 0, 0))  # fmt: skip
        payloads.append(pack(head, _png(img)))
    for ident in ids:  # identity records: [first image, end) and no image
        first = 1 + identities.index(ident)
        end = first + identities.count(ident)
        payloads.append(pack(IRHeader(2, np.array([first, end], np.float32), 0, 0), b""))
    offsets, blob = [], b""
    for p in payloads:
        offsets.append(len(blob))
        blob += frame(p)
    (folder / "train.rec").write_bytes(blob)
    (folder / "train.idx").write_text("".join(f"{k}\t{o}\n" for k, o in enumerate(offsets)))
    return offsets


@pytest.fixture
def faces():
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in IDENTITIES]


@pytest.mark.parametrize("label_arrays", [False, True])
def test_import_joins_identity_labels_and_reads_pixels_in_place(tmp_path, faces, label_arrays):
    write_rec(tmp_path / "ms1m", faces, IDENTITIES, label_arrays)
    csv = tmp_path / "identities.csv"
    csv.write_text("identity,gender,group\n0,male,A\n2,female,B\n")
    out = tmp_path / "out" / "manifest.csv"
    out.parent.mkdir()
    opts = ImportOptions(identities=csv, label_col="gender")
    res = import_dataset("ms1mv2", tmp_path / "ms1m", out, opts)
    assert res.df["identity"].tolist() == [0] * 4 + [2] * 3
    assert res.df["label"].tolist() == ["male"] * 4 + ["female"] * 3
    assert res.df["group"].tolist() == ["A"] * 4 + ["B"] * 3
    assert res.df["rec_key"].tolist() == [1, 2, 3, 4, 10, 11, 12]
    assert res.df["path"].iloc[0].startswith("../ms1m/train.rec#")
    # identity 1's five images: one aggregated row that names the count
    assert len(res.skipped) == 1
    assert res.skipped["reason"].iloc[0] == (
        "identity 1 is not in identities.csv: its 5 images skipped"
    )
    root = out.parent
    for i, (path, key) in enumerate(zip(res.df["path"], res.df["rec_key"], strict=True)):
        pixels = read_rgb(root / path)
        assert np.array_equal(pixels, faces[key - 1]), f"row {i}"
    assert image_size(root / res.df["path"].iloc[0]) == (112, 112)


def test_cli_import_writes_a_manifest_that_reads(tmp_path, faces, capsys):
    write_rec(tmp_path / "ms1m", faces, IDENTITIES)
    csv = tmp_path / "ids.csv"
    csv.write_text("identity,label\n0,male\n1,female\n2,female\n")
    out = tmp_path / "manifest.csv"
    args = ["data", "import", "--format", "ms1mv2", str(tmp_path / "ms1m" / "train.rec"),
            "--out", str(out), "--identities", str(csv)]  # fmt: skip
    assert main(args) == 0
    m = read_manifest(out)
    assert len(m) == 12 and m.classes == ["female", "male"]
    assert np.array_equal(read_rgb(m.abspaths()[5]), faces[5])
    assert main(["data", "check", str(out)]) == 0  # check reads records too
    assert main(["data", "check", str(out), "--decode"]) == 0


def test_truncated_rec_skips_the_broken_records_with_reasons(tmp_path, faces):
    offsets = write_rec(tmp_path / "ms1m", faces, IDENTITIES)
    rec = tmp_path / "ms1m" / "train.rec"
    rec.write_bytes(rec.read_bytes()[: offsets[7] + 40])  # cut inside image record 7
    csv = tmp_path / "ids.csv"
    csv.write_text("identity,label\n0,male\n1,female\n2,female\n")
    res = import_dataset("ms1mv2", rec, tmp_path / "m.csv", ImportOptions(identities=csv))
    assert len(res.df) == 7  # records 1-7 keep their header bytes; 8-12 are gone
    assert len(res.skipped) == 5
    assert res.skipped["reason"].str.contains("file ends inside the record header").all()
    with pytest.raises(ImageReadError, match="truncated"):  # record 7: header, no image
        read_rgb(tmp_path / res.df["path"].iloc[6])
    assert np.array_equal(read_rgb(tmp_path / res.df["path"].iloc[0]), faces[0])


def test_not_a_rec_file_is_one_clear_error(tmp_path):
    (tmp_path / "train.rec").write_bytes(b"\x89PNG" + b"\0" * 60)
    (tmp_path / "train.idx").write_text("0\t0\n1\t8\n")
    csv = tmp_path / "ids.csv"
    csv.write_text("identity,label\n0,male\n")
    with pytest.raises(ValueError, match="first record is unreadable.*bad magic"):
        import_dataset("ms1mv2", tmp_path, tmp_path / "m.csv", ImportOptions(identities=csv))
    with pytest.raises(ValueError, match="needs --identities"):
        import_dataset("ms1mv2", tmp_path, tmp_path / "m.csv")


def test_split_records_rejoin_with_the_magic_word(tmp_path):
    """MXNet splits a payload at an aligned magic word; the reader puts the word back."""
    payload = b"abcd" + struct.pack("<I", MAGIC) + b"efgh"
    parts = [(1, b"abcd"), (3, b"efgh")]
    blob = b"".join(struct.pack("<II", MAGIC, (c << 29) | len(d)) + d for c, d in parts)
    (tmp_path / "x.rec").write_bytes(blob)
    with open(tmp_path / "x.rec", "rb") as f:
        assert read_record(f, 0) == payload
    with pytest.raises(RecordError, match="too short"):
        unpack(b"short")


def test_record_paths_never_shadow_ordinary_files(tmp_path, faces):
    assert split_record_path("/d/train.rec#123") is not None
    assert split_record_path("/d/photo#1.jpg") is None and split_record_path("/d/a.rec") is None
    odd = tmp_path / "odd.rec#0"  # a real file with a record-like name is read as a file
    Image.fromarray(faces[0]).save(odd, format="PNG")
    assert np.array_equal(read_rgb(odd), faces[0])
    with pytest.raises(ImageReadError, match="file not found"):
        read_rgb(tmp_path / "missing.rec#0")


def test_skipped_csv_lines_of_the_identities_table(tmp_path, faces):
    write_rec(tmp_path, faces, IDENTITIES)
    csv = tmp_path / "ids.csv"
    csv.write_text("identity,label\n0,male\nx,male\n0,female\n1,\n2,female\n")
    res = import_dataset("ms1mv2", tmp_path, tmp_path / "m.csv", ImportOptions(identities=csv))
    assert set(res.df["label"]) == {"male", "female"} and len(res.df) == 7
    reasons = pd.Series(res.skipped["reason"])
    assert reasons.str.contains("not a number or its label is empty").sum() == 2
    assert reasons.str.contains("listed again").sum() == 1
    assert reasons.str.contains("identity 1 is not in ids.csv").sum() == 1
