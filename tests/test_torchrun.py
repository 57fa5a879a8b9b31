"""Real torchrun: 2 processes on CPU (gloo) on one checkpoint with an odd number of images.

Launched as users launch it, ``torchrun [its options] -m saliency -- COMMAND ...``; the
reference is the same command in one process. The run is the hand-weighted brows reader
on 23 faces (conftest's ``odd_reader_run``), so each launch costs seconds; the study
launch covers evaluate, explain, average, share, ablate and validate at once.
Counts and row order must match exactly, arithmetic to float tolerance (measured: see the
asserts' tolerances and the issue note).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ODD, mark_done

from saliency.cli import main

N = ODD
TORCHRUN = str(Path(sys.executable).parent / "torchrun")
TESTS = Path(__file__).parent
EXPLAIN = ["--methods", "cam,gradcam,ig", "--ig-n-steps", "8", "--ig-baseline", "blur",
           "--batch-size", "8", "--device", "cpu", "--workers", "0"]  # fmt: skip


def _env() -> dict[str, str]:
    return os.environ | {"OMP_NUM_THREADS": "1", "SALIENCY_PROGRESS": "0"}


def torchrun(*args: str, launcher: tuple[str, ...] = ("--standalone", "--nproc_per_node=2"),
             target: tuple[str, ...] = ("-m", "saliency", "--"), timeout: int = 300):  # fmt: skip
    """``torchrun LAUNCHER TARGET ARGS`` as a user types it; the finished process."""
    cmd = [TORCHRUN, *launcher, *target, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


STUDY = """
[study]
name = "torchrun"
device = "cpu"
workers = 0

[data]
source = "manifest"
path = "{manifest}"
check = false

[train]

[evaluate]
splits = ["test"]

[explain]
methods = ["cam", "gradcam", "ig"]
ig = {{ n_steps = 8, baseline = "blur" }}
batch_size = 8

[average]
permutations = 20
preview = false

[share]
bootstrap = 100

[ablate]
batch_size = 5

[validate]
randomization_images = 7
curve_images = 9
curve_steps = 4
bootstrap = 100
"""


def _study(run: Path, out: Path) -> Path:
    """A study over ``run`` in ``out``: its data and train stages recorded as done (the
    reader's checkpoint stands in for training), the rest to run."""
    from saliency.study.config import load

    shutil.copytree(run, out / "run")
    manifest = _manifest_of(run)
    toml = out / "study.toml"
    toml.write_text(STUDY.format(manifest=manifest))
    (out / "run" / "train_log.csv").write_text(
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_at_chance,lr,seconds\n"
        "1,0.5,0.8,0.5,0.8,False,0.001,1.0\n"
    )
    study = load(toml)
    study.out = out
    mark_done(study, ("data", "train"))
    return toml


def _manifest_of(run: Path) -> str:
    from saliency.runs import Run

    return str(Run(run).checkpoint().data.manifest)


@pytest.fixture(scope="module")
def studies(odd_reader_run, tmp_path_factory):
    """The study run by 2 torchrun processes, and by one process (in this one)."""
    root = tmp_path_factory.mktemp("torchrun")
    two, one = root / "two", root / "one"
    toml_two, toml_one = _study(odd_reader_run, two), _study(odd_reader_run, one)
    out = _ok(torchrun("run", str(toml_two), "--out", str(two)))
    assert main(["run", str(toml_one), "--out", str(one)]) == 0
    return one / "run", two / "run", out


def _close(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-5) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        if pd.api.types.is_numeric_dtype(a[c]) and not pd.api.types.is_bool_dtype(a[c]):
            np.testing.assert_allclose(b[c], a[c], rtol=rtol, atol=1e-6, err_msg=c)
        else:
            assert list(a[c]) == list(b[c]), c  # paths, labels, rows: exactly, in order


@pytest.mark.slow  # several processes on 2 cores: `make test-slow` (CI runs it after `make test`)
def test_study_under_torchrun_gives_the_one_process_files(studies):
    one, two, out = studies
    assert out.count("study torchrun ->") == 1  # rank 0 alone prints
    state = json.loads((two.parent / "study.json").read_text())
    assert all(state[s]["status"] == "done" for s in
               ("evaluate", "explain", "average", "share", "ablate", "validate"))  # fmt: skip
    _close(pd.read_csv(one / "eval/test/predictions.csv"),
           pd.read_csv(two / "eval/test/predictions.csv"))  # fmt: skip
    assert (one / "eval/test/group_accuracy.csv").read_text() == (
        two / "eval/test/group_accuracy.csv").read_text()  # fmt: skip
    for method in ("cam", "gradcam", "ig"):
        a, b = (np.load(r / "saliency/test" / method / "maps.npy") for r in (one, two))
        assert a.shape == (N, 64, 64)
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6 * np.abs(a).max())
        _close(pd.read_csv(one / "saliency/test" / method / "index.csv"),
               pd.read_csv(two / "saliency/test" / method / "index.csv"))  # fmt: skip
    averages = sorted(p.relative_to(one) for p in (one / "averages").glob("*.npz"))
    assert averages and averages == sorted(p.relative_to(two) for p in
                                           (two / "averages").glob("*.npz"))  # fmt: skip
    for p in averages:
        a, b = np.load(one / p), np.load(two / p)
        assert a.files == b.files
        for k in a.files:
            if a[k].dtype.kind in "iub":  # counts, exactly
                np.testing.assert_array_equal(b[k], a[k], err_msg=f"{p}:{k}")
            elif a[k].dtype.kind == "f":
                scale = max(float(np.nanmax(np.abs(a[k]))) if a[k].size else 0.0, 1e-12)
                np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6 * scale,
                                           err_msg=f"{p}:{k}")  # fmt: skip
            else:
                assert (a[k] == b[k]).all(), f"{p}:{k}"
    for pattern in ("share/*/per_image.csv", "share/*/summary.csv", "ablation/*/per_image.csv",
                    "ablation/*/summary.csv", "ablation/ranking_*.csv",
                    "validation/randomization.csv", "validation/curves.csv"):  # fmt: skip
        files = sorted(p.relative_to(one) for p in one.glob(pattern))
        assert files, pattern
        for p in files:
            _close(pd.read_csv(one / p), pd.read_csv(two / p), rtol=1e-4)
    assert not list(two.rglob(".parts"))  # every part merged and cleared
    assert not (two / ".saliency.lock").exists()  # the study's hold, shared by both ranks, gone


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(*args: str) -> None:
    """``args`` as two torchrun "nodes" of one process each on localhost, meeting by a c10d
    rendezvous (as ``srun torchrun`` on a cluster does), each launched by ``saliency launch``
    as typed (torchrun's options, then the command: no ``--``); both must succeed."""
    launcher = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
                f"--rdzv_endpoint=127.0.0.1:{_free_port()}", "--rdzv_id=saliency-test"]  # fmt: skip
    cmd = [str(Path(sys.executable).parent / "saliency"), "launch", *launcher, *args]
    nodes = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env()) for _ in range(2)]  # fmt: skip
    outs = [node.communicate(timeout=300) for node in nodes]
    for node, (out, err) in zip(nodes, outs, strict=True):
        assert node.returncode == 0, out[-2000:] + err[-2000:]
    assert sum(out.count(" images x 3 method(s)") for out, _ in outs) == 1  # rank 0 alone


@pytest.mark.slow  # several processes on 2 cores: `make test-slow` (CI runs it after `make test`)
def test_killed_explain_resumes_on_two_nodes_with_the_one_process_maps(
    odd_reader_run, studies, tmp_path
):
    # rank 1 of a 2-process explain dies after 3 parts (tests/killed_rank_worker.py); the
    # same command again, here as two c10d "nodes" on localhost started by `saliency
    # launch`, reuses the finished parts and merges the one-process maps
    one = studies[0]
    run = tmp_path / "run"
    shutil.copytree(odd_reader_run, run)
    killed = torchrun("explain", "--run", str(run), *EXPLAIN,
                      target=(str(TESTS / "killed_rank_worker.py"), "--"))  # fmt: skip
    assert killed.returncode != 0
    parts = list((run / "saliency/test/.parts").glob("*/*/done"))
    assert 3 <= len(parts) < N  # rank 1's before its death, and what rank 0 finished
    assert not (run / "saliency/test/cam/meta.json").exists()
    # the lock a rank 0 killed while holding it leaves (its process gone): taken over, then
    # shared by the new job's ranks (neither is blocked by it), and gone at the end
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = {"command": "explain", "host": socket.gethostname(), "pid": gone.pid,
             "owner": "torchrun:killed@127.0.0.1:1", "started": "2030-01-02T03:04:05"}  # fmt: skip
    (run / ".saliency.lock").write_text(json.dumps(stale))
    _two_nodes("explain", "--run", str(run), *EXPLAIN)
    assert not (run / ".saliency.lock").exists()
    for method in ("cam", "gradcam", "ig"):
        a, b = (np.load(r / "saliency/test" / method / "maps.npy") for r in (one, run))
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6 * np.abs(a).max())
        _close(pd.read_csv(one / "saliency/test" / method / "index.csv"),
               pd.read_csv(run / "saliency/test" / method / "index.csv"))  # fmt: skip
    assert not (run / "saliency/test/.parts").exists()


@pytest.mark.slow  # several processes on 2 cores: `make test-slow` (CI runs it after `make test`)
def test_a_run_another_command_holds_stops_every_rank_at_once(odd_reader_run, tmp_path):
    # rank 0 reads the lock and tells the others: both ranks stop with the one line, none
    # hangs waiting for the other, nothing is written (saliency.runlock)
    run = tmp_path / "run"
    shutil.copytree(odd_reader_run, run)
    lock = {"command": "ablate", "host": socket.gethostname(), "pid": os.getpid(),
            "owner": "another:job", "started": "2030-01-02T03:04:05+00:00"}  # fmt: skip
    (run / ".saliency.lock").write_text(json.dumps(lock))
    busy = torchrun("explain", "--run", str(run), *EXPLAIN, timeout=120)
    assert busy.returncode != 0
    line = f"error: {run} is being written by `saliency ablate` (host {lock['host']}, process "
    assert busy.stderr.count(line) == 2, busy.stderr[-3000:]  # each rank's one line
    assert json.loads((run / ".saliency.lock").read_text()) == lock
    assert not (run / "saliency").exists()


def test_without_the_double_dash_torchrun_takes_our_flag_for_its_own(odd_reader_run, capsys):
    # torchrun's parser reads --run as an abbreviation of its --run-path (pytorch #120601)
    # and exits before any process starts; the README shows the form with `--`. The parser
    # is the first thing `torchrun` (torch.distributed.run.main) runs, so it is called here
    # in the test's process: a process of its own would only add torch's import
    from torch.distributed.run import parse_args

    argv = ["--standalone", "--nproc_per_node=2", "-m", "saliency", "explain", "--run",
            str(odd_reader_run)]  # fmt: skip
    with pytest.raises(SystemExit) as bad:
        parse_args(argv)
    assert bad.value.code == 2
    assert "ambiguous option: --run could match --run-path" in capsys.readouterr().err


def test_launch_cuts_torchruns_options_from_the_command():
    # `saliency launch` takes torchrun's options up to the command: no `--` to forget (it
    # launches the two-node run above)
    from saliency.cli.launch import split, torchrun_args

    assert split(["--nproc_per_node", "2", "explain", "--run", "R"], ["explain"]) == (
        ["--nproc_per_node", "2"], ["explain", "--run", "R"])  # fmt: skip
    assert split(["--nnodes=2", "--", "explain"], ["x"]) == (["--nnodes=2"], ["explain"])
    assert torchrun_args(["--nproc_per_node=2"], ["explain"]) == [
        "--standalone", "--nproc_per_node=2", "-m", "saliency", "--", "explain"]  # fmt: skip
    assert torchrun_args(["--nnodes=2"], ["explain"])[0] == "--nnodes=2"  # no --standalone
    assert main(["launch", "--nproc_per_node", "2"]) == 2  # no command: one line, exit 2


def test_a_process_not_started_by_torchrun_is_told_the_launch_form(
    odd_reader_run, monkeypatch, capsys
):
    # torchrun's variables without its rendezvous (a hand-made environment): one line
    # naming the launch form, exit 2, before any work
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    assert main(["evaluate", "--run", str(odd_reader_run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "could not join its process group" in err and "-m saliency -- COMMAND" in err
    assert len(err.strip().splitlines()) == 1
