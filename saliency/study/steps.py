"""One adapter per stage for the study runner: the settings table -> the stage's config, the
files that show it is done, and the call that runs it.

Folders inside the study's ``out``: ``data/`` (rendered or imported manifest), ``aligned/``,
``regions/`` and ``run/`` (the run folder of DESIGN.md). Every adapter's ``run`` returns the
stage's own result object (a list of them for ``average``), which the CLI prints.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saliency import rundir
from saliency.study.config import Study


@dataclass
class Hooks:
    """What the caller gives the stages: ``progress(name, total)`` returns an update
    function (counts), ``on_epoch`` receives training epochs, ``on_trainer`` the trainer
    before it starts. Defaults do nothing."""

    progress: Callable[[str, int], Callable[[int], None]] = lambda name, total: lambda n=1: None
    on_epoch: Callable[[Any], None] | None = None
    on_trainer: Callable[[Any], None] | None = None  # the trainer, before it trains


@dataclass
class Step:
    name: str
    deps: tuple[str, ...]
    outputs: Callable[[Study], list[Path]]  # all exist when the stage is done
    run: Callable[[Study, dict, Hooks], Any]
    clears: Callable[[Study], list[Path]] = field(default=lambda s: [])  # removed on a change


def run_dir(study: Study) -> Path:
    return study.out / "run"


def manifest(study: Study, before: str = "train") -> Path:
    """The manifest that stage ``before`` reads: the last of data, align and regions before it."""
    makers = ("data", "align", "regions")
    earlier = makers[: makers.index(before)] if before in makers else makers
    return _manifest_of(study, next(s for s in reversed(earlier) if study.enabled(s)))


def _manifest_of(study: Study, stage: str) -> Path:
    if stage == "data" and study.stages["data"]["source"] == "manifest":
        return Path(study.stages["data"]["path"])
    folder = {"data": "data", "align": "aligned", "regions": "regions"}[stage]
    return study.out / folder / "manifest.csv"


def _sub(settings: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in settings.items() if k.startswith(prefix)}


def _data(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import check

    out = study.out / "data"
    made = None
    if s["source"] != "synth" and not Path(s["path"]).exists():
        where = f" in {study.source}" if study.source else ""
        raise FileNotFoundError(
            f"data.path {s['path']} does not exist: point it{where} at your copy of the data, "
            "or pass --data PATH"
        )
    if s["source"] == "synth":
        from saliency.stages import synth

        cfg = _synth_config(_sub(s, "synth_"))
        made = (synth.run(cfg, out, study.workers, s["preview"], hooks.progress("synth", cfg.n)),
                cfg)  # fmt: skip
    elif s["source"] == "import":
        from saliency.data.importers import ImportOptions, import_dataset
        from saliency.data.manifest import write_manifest

        opts = _sub(s, "import_")
        opts["images"] = Path(opts["images"]) if opts.get("images") else None
        res = import_dataset(s["format"], s["path"], out / "manifest.csv", ImportOptions(**opts))
        if res.df.empty:
            first = f"; first reason: {res.skipped.iloc[0]['reason']}" if len(res.skipped) else ""
            raise ValueError(f"no usable rows in {s['path']}{first}")
        write_manifest(res.df, out / "manifest.csv")
        if len(res.skipped):
            res.skipped.to_csv(out / "manifest_skipped.csv", index=False)
        made = res
    checked = check.run(_manifest_of(study, "data")) if s["check"] else None
    if checked is not None and not checked.result.ok:
        raise ValueError(
            f"{_manifest_of(study, 'data')} has errors; `saliency data check` lists them"
        )
    return {"made": made, "check": checked}


def _synth_config(d: dict):
    from saliency.data.synth.config import SynthConfig

    d = dict(d)
    d["groups"] = {k: tuple(v) for k, v in d["groups"].items()}
    for key in ("split_fractions", "scale_range", "noise_sd"):
        d[key] = tuple(d[key])
    return SynthConfig(**d)


def _align(study: Study, s: dict, hooks: Hooks):
    from saliency.data.manifest import read_manifest
    from saliency.stages.align import AlignConfig, align_manifest

    src = manifest(study, "align")
    cfg = AlignConfig(manifest=str(src), out=str(study.out / "aligned"), device=study.device
                      if study.device != "auto" else "cpu", workers=study.workers, **s)  # fmt: skip
    return align_manifest(cfg, hooks.progress("align", len(read_manifest(src)))), cfg


def _regions(study: Study, s: dict, hooks: Hooks):
    from saliency.data.manifest import read_manifest
    from saliency.stages.regions import RegionsConfig, region_masks

    src = manifest(study, "regions")
    device = study.device if study.device != "auto" else "cpu"
    cfg = RegionsConfig(manifest=str(src), out=str(study.out / "regions"), device=device, **s)
    return region_masks(cfg, hooks.progress("regions", len(read_manifest(src)))), cfg


def _train(study: Study, s: dict, hooks: Hooks):
    from saliency.models.recipe import Augmentation, TrainConfig
    from saliency.stages import train

    out = run_dir(study)
    s = dict(s)
    s["augmentation"] = Augmentation(**s["augmentation"])
    cfg = TrainConfig(manifest=str(manifest(study)), out=str(out), device=study.device,
                      workers=study.workers, **s)  # fmt: skip
    resume = rundir.last_checkpoint(out).is_file()  # an interrupted study continues
    trainer = train.start(None if resume else cfg, out, resume=resume, device=study.device)
    if hooks.on_trainer is not None:
        hooks.on_trainer(trainer)
    return trainer, train.run(trainer, on_epoch=hooks.on_epoch,
                              step=hooks.progress("train", 0))  # fmt: skip


def _adopt(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import adopt

    out = run_dir(study)
    remove([rundir.best_checkpoint(out), out / "model"])  # an interrupted adopt starts over
    return adopt.run(adopt.AdoptConfig(out=str(out), manifest=str(manifest(study)), **s))


def _evaluate(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import evaluate

    s = dict(s)
    splits = s.pop("splits")
    return [
        (
            split,
            evaluate.run(
                evaluate.EvaluateConfig(
                    run_dir(study), split=split, device=study.device, workers=study.workers, **s
                ),
                hooks.progress(f"evaluate {split}", 0),
            ),
        )  # fmt: skip
        for split in splits
    ]


def explain_config(s: dict):
    from saliency.methods.ig import IGConfig
    from saliency.stages.explain_settings import ExplainConfig

    s = dict(s)
    s["ig"] = IGConfig(**s["ig"])
    return ExplainConfig(**s)


def _explain(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import explain
    from saliency.stages.explain_settings import applicable

    methods, note = applicable(run_dir(study), s["methods"])
    cfg = explain_config(s | {"methods": methods})
    res = explain.run(run_dir(study), cfg, study.device, study.workers,
                      hooks.progress(f"explain {cfg.split}", 0))  # fmt: skip
    res.warnings += [note] if note else []
    return cfg, res


def _average(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import average

    s = dict(s)
    splits, vs_correct, vs_rest = (
        s.pop("splits"),
        s.pop("contrast_incorrect"),
        s.pop("contrast_cells"),
    )
    run, results = run_dir(study), []
    for split in splits:
        results.append(
            average.run(average.AverageConfig(run, split=split, workers=study.workers, **s))
        )
    if vs_correct:
        cfg = average.AverageConfig(
            run, split="incorrect", contrast="correct", workers=study.workers, **s
        )
        average.run(cfg)
    if vs_rest:
        names = _cells(run, s.get("maps_split", "test"))
        if names:
            t = dict(s, group=names)
            average.run(average.AverageConfig(run, contrast="rest", workers=study.workers, **t))
    return results


def _cells(run: Path, split: str) -> list[str]:
    """The cells (subgroup x class) that the evaluation of ``split`` found."""
    import pandas as pd

    table = pd.read_csv(rundir.eval_dir(run, split) / "group_accuracy.csv", keep_default_na=False)
    return list(table.loc[table["kind"] == "cell", "selection"])


def _share(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import share

    return share.run(share.ShareConfig(run_dir(study), workers=study.workers, **s),
                     hooks.progress)  # fmt: skip


def _ablate(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import ablate

    cfg = ablate.AblationConfig(**s)
    return cfg, ablate.run(run_dir(study), cfg, study.device, study.workers,
                           hooks.progress(f"ablate {cfg.split}", 0))  # fmt: skip


def _null(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import null

    cfg = null.NullConfig(run_dir(study), device=study.device, workers=study.workers, **s)
    return null.run(cfg, on_epoch=hooks.on_epoch, progress=hooks.progress)


def _agreement(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import agreement

    return agreement.run(agreement.AgreementConfig(run_dir(study), **s))


def _validate(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import validate

    cfg = validate.ValidateConfig(run_dir(study), device=study.device, workers=study.workers, **s)
    return validate.run(cfg, hooks.progress)


def _figures(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import figures

    s = dict(s, formats=tuple(s["formats"]))
    return figures.run(figures.FiguresConfig(run_dir(study), **s))


def _report(study: Study, s: dict, hooks: Hooks):
    from saliency.stages import report

    return report.run(run_dir(study))


def _evaluated(study: Study) -> list[Path]:
    splits = study.stages["evaluate"]["splits"]
    return [rundir.eval_dir(run_dir(study), sp) / "metrics.json" for sp in splits]


def _explained(study: Study) -> list[Path]:
    from saliency.stages.explain_settings import applicable

    s, run = study.stages["explain"], run_dir(study)
    return [rundir.saliency_dir(run, s["split"], m) / "meta.json"
            for m in applicable(run, s["methods"])[0]]  # fmt: skip


def _r(*parts: str) -> Callable[[Study], list[Path]]:
    return lambda study: [run_dir(study).joinpath(*p.split("/")) for p in parts]


STEPS: dict[str, Step] = {s.name: s for s in (
    Step("data", (), lambda st: [_manifest_of(st, "data")], _data,
         lambda st: [] if st.stages["data"]["source"] == "manifest" else [st.out / "data"]),
    Step("align", ("data",), lambda st: [_manifest_of(st, "align")], _align,
         lambda st: [st.out / "aligned"]),
    Step("regions", ("data", "align"), lambda st: [_manifest_of(st, "regions")], _regions,
         lambda st: [st.out / "regions"]),
    Step("train", ("data", "align", "regions"), _r("checkpoints/best.pt", "train_log.csv"),
         _train, _r("checkpoints", "train_log.csv")),
    Step("adopt", ("data", "align", "regions"), _r("checkpoints/best.pt"), _adopt,
         _r("checkpoints", "model")),
    Step("evaluate", ("train", "adopt"), _evaluated, _evaluate, _r("eval")),
    Step("explain", ("train", "adopt"), _explained, _explain, _r("saliency")),
    Step("average", ("explain", "evaluate"), _r("averages"), _average, _r("averages")),
    Step("share", ("explain", "evaluate"), _r("share"), _share, _r("share")),
    Step("ablate", ("train", "adopt"), _r("ablation"), _ablate, _r("ablation")),
    Step("null", ("train", "explain"), _r("null/checkpoints/best.pt"), _null, _r("null")),
    Step("agreement", ("share", "ablate", "null"), _r("agreement"), _agreement, _r("agreement")),
    Step("validate", ("explain", "ablate", "null"), _r("validation/validation.json"),
         _validate, _r("validation")),
    Step("figures", ("evaluate", "explain", "average", "share", "ablate", "validate"),
         _r("figures"), _figures, _r("figures")),
    Step("report", ("figures",), _r("report.html"), _report, _r("report.html")),
)}  # fmt: skip


def remove(paths: list[Path]) -> None:
    """Delete a stage's outputs (files or folders) before it runs with new settings."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
