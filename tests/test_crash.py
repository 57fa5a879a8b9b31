"""An error nobody foresaw: one line naming the exception and a log with the traceback, written
outside the run folder; --debug lets the traceback through."""

import pytest

from saliency.cli import main


@pytest.fixture
def broken_evaluate(monkeypatch, tmp_path):
    """``evaluate`` raising a RuntimeError from deep inside, with logs going to tmp/logs."""
    import saliency.stages.evaluate as evaluate

    def boom(*args, **kwargs):
        raise RuntimeError("a kernel failed\nsecond line")

    monkeypatch.setattr(evaluate, "run_stage", boom)
    monkeypatch.delenv("SALIENCY_DEBUG", raising=False)
    monkeypatch.setenv("SALIENCY_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path


def test_an_unexpected_error_is_one_line_and_a_log(broken_evaluate, tiny_run, capsys):
    before = sorted(p.name for p in tiny_run.rglob("*"))
    assert main(["evaluate", "--run", str(tiny_run), "--workers", "0"]) == 1
    out = capsys.readouterr()
    line = out.err.strip()
    assert "\n" not in line and "Traceback" not in out.err + out.out
    assert line.startswith("saliency evaluate: unexpected RuntimeError: a kernel failed (")
    logs = list((broken_evaluate / "logs").glob("saliency-*-evaluate-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line and "--debug shows it" in line
    text = logs[0].read_text()
    assert text.startswith("saliency evaluate --run") and "Traceback" in text
    assert "second line" in text and "boom" in text
    assert sorted(p.name for p in tiny_run.rglob("*")) == before  # nothing written in the run


def test_debug_lets_the_traceback_through(broken_evaluate, tiny_run):
    with pytest.raises(RuntimeError, match="a kernel failed"):
        main(["evaluate", "--run", str(tiny_run), "--workers", "0", "--debug"])
    assert not (broken_evaluate / "logs").exists()


def test_a_users_mistake_is_still_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("SALIENCY_DEBUG", raising=False)
    monkeypatch.setenv("SALIENCY_LOG_DIR", str(tmp_path / "logs"))
    assert main(["evaluate", "--run", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("saliency evaluate: error:") and "Traceback" not in err
    assert not (tmp_path / "logs").exists()
