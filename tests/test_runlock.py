"""One writer per run folder (saliency.runlock): a second command refuses in one line naming
the first, unless --wait; holds nest; a dead process's lock is taken over; the ranks of one
torchrun job share the lock; nothing is left behind. Two real `saliency explain` processes
on one run: one refuses, the other's maps are a lone run's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from saliency import runlock
from saliency.runlock import RunBusy, hold, lock_path, owner_id, read

HOST = socket.gethostname()
TORCHRUN_VARS = ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE",
                 "LOCAL_RANK", runlock.OWNER_ENV)  # fmt: skip


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """Outside torchrun, whatever the environment that runs the tests."""
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)


def fake_lock(run: Path, pid: int, owner: str = "another:job", host: str = HOST,
              command: str = "ablate") -> dict:  # fmt: skip
    """A lock file as another command would have written it."""
    info = {"command": command, "host": host, "pid": pid, "owner": owner,
            "started": "2030-01-02T03:04:05+00:00"}  # fmt: skip
    lock_path(run).write_text(json.dumps(info))
    return info


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # ended and reaped: no process has its pid (until the system reuses it)
    return proc.pid


def test_a_second_writer_is_refused_in_one_line_naming_the_first(tmp_path):
    fake_lock(tmp_path, os.getppid())  # a live process of another job
    with pytest.raises(RunBusy) as err, hold(tmp_path, "explain"):
        pass
    line = str(err.value)
    assert "\n" not in line and isinstance(err.value, ValueError)  # the CLI's one line, exit 2
    holder = f"`saliency ablate` (host {HOST}, process {os.getppid()}, since 2030-01-02 03:04:05)"
    assert line == f"{tmp_path} is being written by {holder}; wait for it, or pass --wait"
    assert read(tmp_path)["command"] == "ablate"  # the holder's file is untouched


def test_holds_nest_and_the_outermost_removes_the_file(tmp_path):
    with hold(tmp_path, "run") as outer:
        info = read(tmp_path)
        assert outer.lock == lock_path(tmp_path) and outer.note is None
        assert info["command"] == "run" and info["pid"] == os.getpid() and info["host"] == HOST
        assert info["owner"] == f"{HOST}:{os.getpid()}"
        with hold(tmp_path, "explain"), hold(tmp_path / ".." / tmp_path.name, "share"):
            assert read(tmp_path) == info  # a stage inside the study: the study's lock
        assert read(tmp_path) == info
    assert not lock_path(tmp_path).exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ending", [ValueError, KeyboardInterrupt])
def test_no_lock_is_left_behind_however_the_block_ends(tmp_path, ending):
    with pytest.raises(ending), hold(tmp_path, "explain"):
        assert lock_path(tmp_path).exists()
        raise ending("stop")
    assert not lock_path(tmp_path).exists()
    with hold(tmp_path, "explain"):  # and the run is free again
        pass


def test_a_dead_process_lock_on_this_host_is_taken_over(tmp_path):
    pid = dead_pid()
    fake_lock(tmp_path, pid)
    with hold(tmp_path, "explain") as held:
        assert read(tmp_path)["pid"] == os.getpid()
        assert held.note and f"process {pid}" in held.note and "ablate" in held.note
    assert not lock_path(tmp_path).exists()
    # a dead pid on another host cannot be seen dead from here: refused, saying what to do
    fake_lock(tmp_path, pid, host="elsewhere")
    with pytest.raises(RunBusy, match=r"host elsewhere.*remove .*\.saliency\.lock"):
        runlock.acquire(tmp_path, "explain")


@pytest.mark.skipif(runlock._process_start(os.getppid()) is None, reason="Linux's /proc")
def test_a_pid_now_worn_by_another_process_is_stale(tmp_path):
    # after a reboot (or a container's restart) the pid may be alive as someone else
    info = fake_lock(tmp_path, os.getppid()) | {"process": "another-boot:1"}
    lock_path(tmp_path).write_text(json.dumps(info))
    with hold(tmp_path, "explain") as held:
        assert held.note and read(tmp_path)["pid"] == os.getpid()
    fake_lock(tmp_path, os.getpid(), owner=owner_id())  # this very pid, holding nothing here
    with hold(tmp_path, "explain") as held:
        assert held.note and read(tmp_path)["command"] == "explain"
    assert not lock_path(tmp_path).exists()


def test_wait_polls_until_the_run_is_free(tmp_path):
    fake_lock(tmp_path, os.getppid())  # alive, another owner
    timer = threading.Timer(0.4, lock_path(tmp_path).unlink)
    timer.start()
    start = time.perf_counter()
    with hold(tmp_path, "explain", wait=True, poll=0.05):
        waited = time.perf_counter() - start
        assert read(tmp_path)["command"] == "explain"
    timer.join()
    assert 0.3 < waited < 5
    assert not lock_path(tmp_path).exists()


def test_a_missing_run_is_made_for_a_maker_and_removed_when_left_empty(tmp_path):
    new = tmp_path / "a" / "run"
    with hold(new, "train", create=True):
        assert read(new)["command"] == "train"
    assert not (tmp_path / "a").exists()  # the command wrote nothing: nothing stays
    with hold(new, "train", create=True):
        (new / "train_log.csv").write_text("epoch\n")
    assert [p.name for p in new.iterdir()] == ["train_log.csv"]
    with hold(tmp_path / "missing", "explain") as held:  # nothing to lock; the stage says so
        assert held.lock is None
    assert not (tmp_path / "missing").exists()


def test_the_ranks_of_one_torchrun_job_share_an_owner(monkeypatch, tmp_path):
    job = {"TORCHELASTIC_RUN_ID": "a1b2", "MASTER_ADDR": "node7", "MASTER_PORT": "29500"}
    assert owner_id(job | {"RANK": "0"}) == owner_id(job | {"RANK": "1"}) == (
        "torchrun:a1b2@node7:29500")  # fmt: skip
    assert owner_id(job | {"TORCHELASTIC_RUN_ID": "other"}) != owner_id(job)
    assert owner_id({}) == f"{HOST}:{os.getpid()}"
    assert owner_id({runlock.OWNER_ENV: "parent"} | job) == "parent"  # a holder's child
    # rank 1 with no process group to ask: absent, its job's or stale is fine, and it never
    # creates or removes the file; another job's live lock is refused
    for k, v in (job | {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).items():
        monkeypatch.setenv(k, v)
    with hold(tmp_path, "explain") as held:  # before rank 0 has made it
        assert held.lock is None and read(tmp_path) is None
    info = fake_lock(tmp_path, os.getppid(), owner=owner_id(), command="explain")  # rank 0's
    with hold(tmp_path, "explain"):
        pass
    assert read(tmp_path) == info
    fake_lock(tmp_path, os.getppid())
    with pytest.raises(RunBusy, match="being written by `saliency ablate`"):
        runlock.acquire(tmp_path, "explain")


def test_a_failing_command_leaves_the_run_as_it_was(monkeypatch, tmp_path, capsys):
    from saliency.cli import main
    from saliency.stages.contract import Stage

    seen = []

    def interrupted(self, cfg, ctx):
        seen.append(read(ctx.run))
        raise KeyboardInterrupt

    monkeypatch.setattr(Stage, "run_in", interrupted)
    run = tmp_path / "run"
    run.mkdir()
    assert main(["figures", "--run", str(run)]) == 130
    assert capsys.readouterr().err == "saliency figures: interrupted\n"
    assert seen[0]["command"] == "figures" and seen[0]["pid"] == os.getpid()
    assert list(run.iterdir()) == []
    fake_lock(run, os.getppid(), command="explain")
    assert main(["figures", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("saliency figures: error: ") and "`saliency explain`" in err
    assert len(err.splitlines()) == 1 and len(seen) == 1  # refused before the stage ran
    # train --out a folder that is not there: made for the lock, gone with the failure
    assert main(["train", "--out", str(tmp_path / "new"), "--resume"]) == 2
    assert not (tmp_path / "new").exists()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    return env | {"OMP_NUM_THREADS": "1", "SALIENCY_PROGRESS": "0"}


EXPLAIN = ["explain", "--methods", "cam,gradcam", "--batch-size", "8", "--device", "cpu",
           "--workers", "0"]  # fmt: skip


def test_two_concurrent_explains_one_refuses_the_other_equals_a_lone_run(odd_reader_run, tmp_path):
    # the first is paused (SIGSTOP) once its lock file is there, so the second surely meets it
    from saliency.cli import main

    run, lone = tmp_path / "run", tmp_path / "lone"
    shutil.copytree(odd_reader_run, run)
    shutil.copytree(odd_reader_run, lone)
    cmd = [sys.executable, "-m", "saliency", *EXPLAIN, "--run", str(run)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env())  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (read(run) or {}).get("pid") != first.pid:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out[-2000:] + err[-2000:]
    assert second.returncode == 2 and second.stdout == ""
    line = second.stderr.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith(f"saliency explain: error: {run} is being written by `saliency "
                           f"explain` (host {HOST}, process {first.pid}, since ")  # fmt: skip
    assert line.endswith("wait for it, or pass --wait")
    assert not lock_path(run).exists()
    assert main([*EXPLAIN, "--run", str(lone)]) == 0
    for method in ("cam", "gradcam"):
        a, b = (np.load(r / "saliency/test" / method / "maps.npy") for r in (lone, run))
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7 * np.abs(a).max())
    assert sorted(p.name for p in run.rglob("*")) == sorted(p.name for p in lone.rglob("*"))


def test_a_study_holds_its_run_around_every_stage(monkeypatch, tmp_path, capsys):
    # `saliency run` holds OUT/run for the whole study; a study that made no run leaves none
    from saliency.cli import main
    from saliency.stages.contract import Result, Stage

    seen = []

    def record(self, cfg, ctx):
        seen.append((self.name, read(tmp_path / "out" / "run")))
        return Result(None)

    monkeypatch.setattr(Stage, "run_in", record)
    toml = tmp_path / "study.toml"
    toml.write_text('[study]\nname = "s"\n\n[data]\nsource = "manifest"\n'
                    f'path = "{tmp_path / "m.csv"}"\ncheck = false\n\n[train]\n')  # fmt: skip
    assert main(["run", str(toml), "--out", str(tmp_path / "out")]) == 0
    assert [name for name, _ in seen] == ["data", "train"]
    assert all(lock["command"] == "run" and lock["pid"] == os.getpid() for _, lock in seen)
    assert not (tmp_path / "out" / "run").exists()
    (tmp_path / "out" / "run").mkdir()  # and while another command writes it, no study runs
    fake_lock(tmp_path / "out" / "run", os.getppid(), command="explain")
    assert main(["run", str(toml), "--out", str(tmp_path / "out")]) == 2
    assert "is being written by `saliency explain`" in capsys.readouterr().err
    assert len(seen) == 2
