import numpy as np
import pandas as pd

from saliency.cli import main
from saliency.data.check import check_manifest
from saliency.data.manifest import landmark_frame, write_manifest


def _manifest(tmp_path, tiny_image, rows, landmarks=None):
    for name in ("a.png", "b.png", "c.png"):
        tiny_image(tmp_path / name, size=(24, 20))
    df = pd.DataFrame(rows, columns=["path", "label", "split"])
    if landmarks is not None:
        df = pd.concat([df, landmark_frame(landmarks)], axis=1)
    return write_manifest(df, tmp_path / "m.csv")


def _good_points(n):
    return np.tile(np.linspace([2, 2], [20, 17], 68)[None], (n, 1, 1))


def test_clean_manifest_passes_and_cli_exits_zero(tmp_path, tiny_image, capsys):
    rows = [("a.png", "female", "train"), ("b.png", "male", "test")]
    path = _manifest(tmp_path, tiny_image, rows, _good_points(2))
    result = check_manifest(path)
    assert result.ok and result.problems == []
    assert main(["data", "check", str(path)]) == 0
    assert "0 error(s)" in capsys.readouterr().out


def test_every_problem_kind_is_caught_with_its_row(tmp_path, tiny_image, capsys):
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "zero.png").write_bytes(b"")
    rows = [
        ("a.png", "female", "train"),  # 0 fine
        ("missing.png", "male", "train"),  # 1 missing
        ("text.jpg", "male", "train"),  # 2 unreadable
        ("zero.png", "male", "train"),  # 3 unreadable (empty)
        ("a.png", "male", "val"),  # 4 duplicate of row 0
        ("b.png", "child", "holdout"),  # 5 third class, bad split
        ("c.png", "male", "test"),  # 6 landmarks outside the image
    ]
    pts = _good_points(7)
    pts[6, 30] = [50.0, 5.0]  # x beyond the 24 px width
    pts[0, 3] = np.nan  # row 0: incomplete landmarks
    result = check_manifest(_manifest(tmp_path, tiny_image, rows, pts))
    found = {(p.row, p.kind) for p in result.errors}
    assert (1, "missing") in found
    assert (2, "unreadable") in found and (3, "unreadable") in found
    assert (4, "duplicate") in found
    assert (5, "split") in found
    assert (6, "landmarks") in found and (0, "landmarks") in found
    assert (None, "label") in found  # three classes
    msgs = " ".join(p.message for p in result.errors)
    assert "3 classes found" in msgs and "67 of 68" in msgs and "point 30" in msgs
    assert (
        main(["data", "check", str(tmp_path / "m.csv"), "--report", str(tmp_path / "r.csv")]) == 1
    )
    report = pd.read_csv(tmp_path / "r.csv")
    assert len(report) == len(result.problems)


def test_expected_classes_flag_rows_with_unknown_labels(tmp_path, tiny_image):
    rows = [("a.png", "female", ""), ("b.png", "Female", "")]
    result = check_manifest(_manifest(tmp_path, tiny_image, rows), classes=["female", "male"])
    assert [(p.row, p.kind) for p in result.errors] == [(1, "label")]


def test_structural_problem_is_one_clear_error(tmp_path):
    (tmp_path / "m.csv").write_text("file,label\na.png,male\n")
    result = check_manifest(tmp_path / "m.csv")
    assert not result.ok and result.errors[0].kind == "structure"
