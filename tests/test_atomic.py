"""Atomic writes: an interrupted write keeps the old file and leaves no temporary behind."""

import json
import os

import numpy as np
import pytest

from saliency.atomic import atomic_write, atomic_write_json, atomic_write_text


class Interrupted(Exception):
    pass


def test_a_write_that_fails_midway_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    atomic_write_text(target, "old\n")

    def half_then_die(tmp):
        tmp.write_text("new, but only ha")
        raise Interrupted

    with pytest.raises(Interrupted):
        atomic_write(target, half_then_die)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]  # no .table.* left


def test_keyboard_interrupt_is_cleaned_up_too(tmp_path):
    target = tmp_path / "maps.npz"

    def interrupted(tmp):
        np.savez(tmp, a=np.ones(3))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert list(tmp_path.iterdir()) == []


def test_success_replaces_the_file_with_the_usual_permissions_and_keeps_the_suffix(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    seen = []
    atomic_write(target, lambda tmp: (seen.append(tmp.suffix), tmp.write_text("{}")))
    assert seen == [".json"]  # writers that pick a format by extension see the right one
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]
