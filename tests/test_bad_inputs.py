"""Every command, given what users get wrong: one line that says what to do, exit code 2,
no traceback, and the run folder it pointed at untouched (the hash of every file in it).

The run is a copy of the hand-weighted brows reader (tests/conftest.py), evaluated and
explained (cam), so that every command has something to refuse. ``SALIENCY_DEBUG=1``
(conftest) lets any unexpected exception through: such a case fails here with its
traceback instead of passing as a crash report.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from hand_models import AgeGender

from saliency.cli import ORDER, main

DERIVED = ("saliency", "ablation", "share", "averages", "agreement", "figures", "eval", "null",
           "validation", "report.html", "config.json", "images.json", "attributes")  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory, brows_reader_run, brows_world) -> dict[str, Path]:
    """The run, and the bad files (one of each kind) the cases point at."""
    root = tmp_path_factory.mktemp("bad")
    run = root / "run"
    shutil.copytree(brows_reader_run, run, ignore=shutil.ignore_patterns(*DERIVED))
    assert main(["evaluate", "--run", str(run), "--workers", "0"]) == 0
    assert main(["explain", "--run", str(run), "--methods", "cam", "--workers", "0"]) == 0
    manifest = brows_world / "manifest.csv"
    df = pd.read_csv(manifest)
    df["path"] = [str((brows_world / p).resolve()) for p in df["path"]]
    text = root / "text.jpg"
    text.write_text("this is not an image, only text with a .jpg name\n")
    paths = {"run": run, "m": manifest, "text": text, "root": root}
    paths["wrongcols"] = root / "wrongcols.csv"
    pd.DataFrame({"file": df["path"], "sex": df["label"]}).to_csv(paths["wrongcols"], index=False)
    paths["oneclass"] = root / "oneclass.csv"
    df.assign(label=df["label"].iloc[0]).to_csv(paths["oneclass"], index=False)
    paths["textimage"] = root / "textimage.csv"
    texts = [root / f"text{i}.png" for i in range(4)]
    for t in texts:
        t.write_text("text, not pixels\n")
    df.head(4).assign(path=[str(t) for t in texts]).to_csv(paths["textimage"], index=False)
    paths["nosplit"] = root / "nosplit.csv"  # a seeded split: train rows exist
    df.assign(split="").to_csv(paths["nosplit"], index=False)
    paths["empty"] = root / "empty.csv"
    df.head(0).to_csv(paths["empty"], index=False)
    paths["garbage"] = root / "garbage.pt"
    paths["garbage"].write_bytes(b"\x00\x01 not a checkpoint" * 50)
    paths["corrupt_onnx"] = root / "corrupt.onnx"
    paths["corrupt_onnx"].write_bytes(b"\x08\x07garbage that protobuf cannot parse" * 20)
    paths["multi_onnx"] = root / "multi.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(AgeGender().eval(), (torch.zeros(2, 3, 64, 64),),
                          str(paths["multi_onnx"]), dynamo=False, input_names=["input"],
                          output_names=["age", "gender_logits", "gender_prob"],
                          dynamic_axes={"input": {0: "batch"}})  # fmt: skip
    paths["broken_run"] = root / "broken_run"
    shutil.copytree(run, paths["broken_run"])
    (paths["broken_run"] / "checkpoints" / "best.pt").write_bytes(b"truncated" * 10)
    paths["bad_toml"] = root / "bad.toml"
    paths["bad_toml"].write_text("[study\nout = \n")
    paths["unknown_toml"] = root / "unknown.toml"
    paths["unknown_toml"].write_text("[data]\n[train]\nepoch = 3\n")
    paths["negative_toml"] = root / "negative.toml"
    paths["negative_toml"].write_text("[data]\n[train]\nbatch_size = -2\n")
    return paths


# (id, argv with {placeholders} from the world fixture and {new}: a folder that must not
# be made, what the one line must mention[, the exit code when it is not 2])
CASES = [
    ("demo-bad-only", "demo --out {new} --only nonsense", "nonsense"),
    ("run-missing-toml", "run {root}/absent.toml", "absent.toml"),
    ("run-bad-toml", "run {bad_toml}", "bad.toml"),
    ("run-unknown-key", "run {unknown_toml}", "train.epoch"),
    ("run-negative-batch", "run {negative_toml} --out {new}", "batch_size"),
    ("launch-no-command", "launch --nproc-per-node 2", "name the command"),
    ("synth-negative-n", "synth --out {new} --n -5", "--n"),
    ("synth-unknown-region", "synth --out {new} --cues chin=1.0", "chin"),
    ("data-import-unknown-format", "data import --format nonsense {m} --out {new}", "nonsense"),
    ("data-import-missing", "data import --format csv {root}/absent.csv --out {new}", "absent"),
    ("data-check-wrong-columns", "data check {wrongcols}", "path", 1),
    ("data-check-missing", "data check {root}/absent.csv", "absent"),
    ("align-wrong-columns", "align --manifest {wrongcols} --out {new}", "path"),
    ("align-unknown-backend", "align --manifest {m} --out {new} --backend nonsense", "nonsense"),
    ("regions-missing-manifest", "regions --manifest {root}/absent.csv --out {new}", "absent"),
    ("regions-unknown-source", "regions --manifest {m} --out {new} --source nonsense", "nonsense"),
    ("train-one-class", "train --manifest {oneclass} --out {new} --epochs 1", "class"),
    ("train-negative-batch", "train --manifest {nosplit} --out {new} --batch-size -4", "-4"),
    ("train-wrong-columns", "train --manifest {wrongcols} --out {new}", "path"),
    ("train-empty-manifest", "train --manifest {empty} --out {new}", "empty"),
    (
        "adopt-corrupt-onnx",
        "adopt --out {new} --weights {corrupt_onnx} --size 64 --classes female,male",
        "ONNX",
    ),
    (
        "adopt-several-outputs",
        "adopt --out {new} --weights {multi_onnx} --size 64 --classes female,male",
        "--output-name",
    ),
    (
        "adopt-corrupt-checkpoint",
        "adopt --out {new} --weights {garbage} --arch resnet18 --size 64 --classes female,male",
        "garbage.pt",
    ),
    (
        "adopt-missing-weights",
        "adopt --out {new} --weights {root}/absent.pt --arch resnet18 "
        "--size 64 --classes female,male",
        "absent",
    ),
    ("evaluate-negative-batch", "evaluate --run {run} --batch-size -1", "-1"),
    ("evaluate-corrupt-checkpoint", "evaluate --run {broken_run}", "best.pt"),
    ("evaluate-missing-run", "evaluate --run {root}/absent", "absent"),
    ("evaluate-unknown-split", "evaluate --run {run} --split nonsense", "nonsense"),
    ("evaluate-wrong-columns", "evaluate --run {run} --manifest {wrongcols} --name other", "path"),
    ("evaluate-text-images", "evaluate --run {run} --manifest {textimage} --name text", "image"),
    ("compare-missing-run", "compare {root}/absent", "absent"),
    ("compare-unknown-split", "compare {run} --split nonsense", "nonsense"),
    ("explain-unknown-method", "explain --run {run} --methods nonsense", "nonsense"),
    ("explain-negative-batch", "explain --run {run} --methods cam --batch-size -2", "-2"),
    ("explain-empty-selection", "explain --run {run} --methods cam --split val", "val"),
    ("explain-corrupt-checkpoint", "explain --run {broken_run} --methods cam", "best.pt"),
    ("average-unknown-group", "average --run {run} --groups ZZ_F", "ZZ_F"),
    ("average-unknown-method", "average --run {run} --methods nonsense", "nonsense"),
    ("average-unknown-outcome", "average --run {run} --outcomes nonsense", "nonsense"),
    ("predict-text-image", "predict --run {run} {text}", "text.jpg"),
    ("predict-missing-image", "predict --run {run} {root}/absent.jpg", "absent"),
    ("predict-corrupt-checkpoint", "predict --run {broken_run} {text}", "best.pt"),
    ("share-unknown-region-method", "share --run {run} --methods nonsense", "nonsense"),
    ("share-unknown-group", "share --run {run} --groups ZZ", "ZZ"),
    ("ablate-unknown-region", "ablate --run {run} --regions chin", "chin"),
    ("ablate-unknown-fill", "ablate --run {run} --regions eyes --fill nonsense", "nonsense"),
    ("ablate-negative-batch", "ablate --run {run} --regions eyes --batch-size -3", "-3"),
    ("ablate-unknown-group", "ablate --run {run} --regions eyes --groups ZZ", "ZZ"),
    ("null-negative-epochs", "null --run {run} --epochs -1", "--epochs"),
    ("null-no-recipe", "null --run {run}", "recipe"),
    ("null-missing-run", "null --run {root}/absent", "absent"),
    ("agreement-unknown-method", "agreement --run {run} --methods cam,nonsense", "nonsense"),
    ("validate-unknown-method", "validate --run {run} --methods nonsense", "nonsense"),
    ("attributes-no-evaluation", "attributes --run {run} --split val", "evaluate"),
    ("validate-corrupt-checkpoint", "validate --run {broken_run}", "best.pt"),
    ("figures-negative-dpi", "figures --run {run} --dpi -5", "--dpi"),
    ("figures-missing-run", "figures --run {root}/absent", "absent"),
    ("report-without-figures", "report --run {run}", "figures"),
    ("export-unknown-format", "export --run {run} --format nonsense", "nonsense"),
    ("export-corrupt-checkpoint", "export --run {broken_run}", "best.pt"),
]


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_cases_cover_every_command():
    covered = {case[1].split()[0] for case in CASES}
    assert covered >= set(ORDER), set(ORDER) - covered


def _main(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own usage errors (exit 2, usage and one line)
        return int(exc.code)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_exit_2_and_the_run_untouched(world, tmp_path, capsys, case):
    _, argv, mention, *expected = case
    new = tmp_path / "new"
    before = {k: _digest(world[k]) for k in ("run", "broken_run")}
    code = _main(argv.format(new=new, **world).split())
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == (expected[0] if expected else 2), text
    assert "Traceback" not in text
    if not expected:  # exit 2: one line on stderr that names the mistake
        errors = [line for line in out.err.splitlines() if "error:" in line]
        assert len(errors) == 1, out.err
        assert mention.lower() in errors[0].lower(), errors[0]
    else:  # data check's report (exit 1: it found errors) names them on stdout
        assert mention in out.out
    assert {k: _digest(world[k]) for k in before} == before
    assert not new.exists() or not any(new.iterdir()), sorted(new.rglob("*"))
