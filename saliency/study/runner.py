"""The study runner: every stage of a :class:`~saliency.study.config.Study` in order,
skipping the ones done with the same settings and re-running the ones whose settings changed.

``OUT/study.json`` records, per stage, the settings it ran with, a fingerprint of them and of
the stages it reads (so a change upstream re-runs everything downstream of it), whether it
finished, and its time. :func:`plan` says what will happen to each stage and why;
:func:`execute` does it. A stage interrupted mid-way continues (the stages are resumable);
a stage whose settings changed has its outputs removed first, and the plan says so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from saliency.atomic import atomic_write_text
from saliency.stages import registry
from saliency.stages.contract import Result
from saliency.study.config import Study, build_config, settle, stage_names
from saliency.study.layout import context

STATE = "study.json"


@dataclass
class Decision:
    stage: str
    action: str  # run, skip, resume or rerun
    reason: str
    fingerprint: str
    changes: list[str] = field(default_factory=list)  # "train.epochs: 8 -> 10"
    legacy: bool = False  # done with the same settings, recorded under older names


def state_path(study: Study) -> Path:
    return study.out / STATE


def read_state(study: Study) -> dict:
    path = state_path(study)
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_state(study: Study, state: dict) -> None:
    study.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_path(study), json.dumps(state, indent=2, default=str))


def fingerprints(study: Study) -> dict[str, str]:
    """Per enabled stage: a hash of its settings and of the stages it reads."""
    out: dict[str, str] = {}
    for stage in stage_names():
        if not study.enabled(stage):
            continue
        out[stage] = _fingerprint(stage, study.stages[stage], out)
    return out


def _fingerprint(stage: str, settings: dict, upstream: dict[str, str]) -> str:
    deps = {d: upstream[d] for d in registry.get(stage).deps if d in upstream}
    text = json.dumps({"settings": settings, "deps": deps}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _legacy_same(stage: str, recorded: dict, now: dict) -> bool:
    """Whether settings recorded under older names (or before a key existed, at its default)
    are the settings the study holds now."""
    try:
        upgraded = settle(stage, recorded, None)
    except ValueError:
        return False
    return upgraded == now


def _outputs(study: Study, stage: str, which: str = "outputs") -> list[Path]:
    rec = registry.get(stage)
    ctx = context(study, stage)
    cfg = build_config(stage, study.stages[stage], **_context_fields(ctx))
    return getattr(rec, which)(ctx, cfg)


def _context_fields(ctx) -> dict:
    return {"run": ctx.run, "out": ctx.out, "manifest": ctx.manifest, "device": ctx.device,
            "workers": ctx.workers}  # fmt: skip


def _changes(stage: str, old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        f"{stage}.{k}: {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}"
        for k in keys
        if old.get(k) != new.get(k)
    ]


def plan(study: Study, only: list[str] | None = None) -> list[Decision]:
    """What each enabled stage (or each of ``only``) will do, with the reason."""
    if only:
        names = stage_names()
        bad = [s for s in only if s not in names]
        if bad:
            raise ValueError(f"unknown stage {bad[0]!r}; stages: {', '.join(names)}")
        off = [s for s in only if not study.enabled(s)]
        if off:
            raise ValueError(f"stage {off[0]!r} has no table in the study; add [{off[0]}]")
    state, fps = read_state(study), fingerprints(study)
    decisions: list[Decision] = []
    rerun: set[str] = set()
    same: set[str] = set()  # recorded under older names, the same settings
    for stage in stage_names():
        if not study.enabled(stage):
            continue
        deps, fp, rec = registry.get(stage).deps, fps[stage], state.get(stage)
        done = all(p.exists() for p in _outputs(study, stage))
        upstream = [d for d in deps if d in rerun]
        legacy = (
            rec is not None
            and rec.get("fingerprint") != fp
            and _legacy_same(stage, rec.get("settings", {}), study.stages[stage])
            and all(rec.get("deps", {}).get(d) == fps[d] or d in same for d in deps if d in fps)
        )
        if legacy:
            same.add(stage)
        if rec is None:
            if stage in ("train", "adopt") and (study.out / "run" / "checkpoints").exists():
                raise ValueError(
                    f"{study.out / 'run'} holds a model this study has no record of; remove "
                    "it or give another --out"
                )
            d = Decision(stage, "run", "not run yet", fp)
            if done:
                d = Decision(stage, "rerun", "outputs without a record of their settings", fp)
        elif rec.get("fingerprint") != fp and not legacy:
            old = settle(stage, rec.get("settings", {}), None) if _settles(stage, rec) else {}
            changes = _changes(stage, old or rec.get("settings", {}), study.stages[stage])
            why = "; ".join(changes) if changes else ""
            if not why:
                changed = upstream or [
                    d for d in deps if d in fps and rec.get("deps", {}).get(d) != fps[d]
                ]
                why = f"{', '.join(changed) or 'an earlier stage'} changed"
            d = Decision(stage, "rerun", f"settings changed: {why}", fp, changes)
        elif rec.get("status") != "done":
            d = Decision(stage, "resume", "interrupted; continuing where it stopped", fp)
        elif not done:
            d = Decision(stage, "run", "finished before, but its outputs are missing", fp)
        elif legacy:
            d = Decision(stage, "skip", "done with the same settings (recorded under older "
                         "names; the record is updated)", fp, legacy=True)  # fmt: skip
        else:
            d = Decision(stage, "skip", "done with the same settings", fp)
        if d.action == "skip" and upstream:
            d = Decision(stage, "rerun", f"{', '.join(upstream)} runs again", fp)
        if d.action != "skip":
            rerun.add(stage)
        decisions.append(d)
    if only:
        chosen = [d for d in decisions if d.stage in only]
        for d in chosen:
            for dep in registry.get(d.stage).deps:
                if dep in fps and dep not in only and dep in rerun:
                    raise ValueError(
                        f"--only {d.stage}: stage {dep!r} is not done with these settings; "
                        f"run it first (or add it to --only)"
                    )
        return chosen
    return decisions


def _settles(stage: str, rec: dict) -> bool:
    try:
        settle(stage, rec.get("settings", {}), None)
    except ValueError:
        return False
    return True


def refresh(study: Study, decision: Decision) -> None:
    """Rewrite a legacy record (older names, same settings) under the current names."""
    state = read_state(study)
    fps = fingerprints(study)
    state[decision.stage] |= {
        "settings": study.stages[decision.stage],
        "fingerprint": decision.fingerprint,
        "deps": {d: fps[d] for d in registry.get(decision.stage).deps if d in fps},
    }
    _write_state(study, state)


def execute(study: Study, decision: Decision, **hooks: Any) -> tuple[Result | None, float]:
    """Carry out one decision; returns the stage's result (``None`` when skipped) and the
    seconds it took. The state file is written before and after the stage runs. ``hooks``:
    the context's ``progress``, ``on_epoch``, ``on_trainer``, ``rank`` and ``world_size``.

    Under torchrun every rank calls this with the same decision: rank 0 alone writes
    ``study.json`` and clears outputs; a sharded stage runs on every rank, any other on rank
    0 while the rest wait (:meth:`~saliency.stages.contract.Stage.run_in`)."""
    from saliency.distributed import barrier

    main = hooks.get("rank", 0) == 0
    if decision.action == "skip":
        if decision.legacy and main:
            refresh(study, decision)
        return None, 0.0
    stage = registry.get(decision.stage)
    if main:
        if decision.action == "rerun" or (decision.action == "resume" and not stage.resumable):
            remove(_outputs(study, decision.stage, "clears"))
        fps = fingerprints(study)
        state = read_state(study)
        state[decision.stage] = {
            "settings": study.stages[decision.stage],
            "fingerprint": decision.fingerprint,
            "deps": {d: fps[d] for d in stage.deps if d in fps},
            "status": "started",
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write_state(study, state)
    barrier()  # outputs cleared before any rank starts
    start = time.perf_counter()
    ctx = context(study, decision.stage, **hooks)
    cfg = build_config(decision.stage, study.stages[decision.stage], **_context_fields(ctx))
    result = stage.run_in(cfg, ctx)
    seconds = time.perf_counter() - start
    if main:
        state = read_state(study)
        state[decision.stage] |= {"status": "done", "seconds": round(seconds, 1)}
        _write_state(study, state)
    return result, seconds


def remove(paths: list[Path]) -> None:
    """Delete a stage's outputs (files or folders) before it runs with new settings."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
