"""Every stage, in study order: one :class:`~saliency.stages.contract.Stage` line each.

Adding a stage is its module (``run_stage(cfg, ctx) -> Result``), its config dataclass and one line
here (plus a command in ``saliency/cli/`` when it needs one beyond the generated one). Other
packages add stages through the ``saliency.stages`` entry-point group: each entry point names
a :class:`Stage` record; it runs after the built-in stages it depends on.

Torch-free: imports only the config dataclasses.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from saliency import rundir
from saliency.configs.attributes import AttributesConfig
from saliency.configs.checks import AblationConfig, AgreementConfig, ValidateConfig
from saliency.configs.data import DataConfig
from saliency.configs.maps import AverageConfig, ExplainConfig, ShareConfig
from saliency.configs.model import AdoptConfig, EvaluateConfig, ExportConfig, NullConfig
from saliency.configs.output import FiguresConfig, ReportConfig
from saliency.configs.prepare import AlignConfig, RegionsConfig
from saliency.data.synth.config import SynthConfig
from saliency.methods.names import available
from saliency.models.recipe import TrainConfig
from saliency.stages.contract import Stage, StageContext

GROUP = "saliency.stages"
RUN_CONTEXT = ("run", "device", "workers")


def _in_run(*parts: str) -> Callable[[StageContext, Any], list[Path]]:
    return lambda ctx, cfg: [Path(ctx.run).joinpath(*p.split("/")) for p in parts]


def _in_out(*parts: str) -> Callable[[StageContext, Any], list[Path]]:
    return lambda ctx, cfg: [Path(ctx.out).joinpath(*p.split("/")) for p in parts]


def _data_manifest(ctx: StageContext, cfg: DataConfig) -> list[Path]:
    return [cfg.manifest_path(ctx.out)]


def _data_folder(ctx: StageContext, cfg: DataConfig) -> list[Path]:
    return [] if cfg.source == "manifest" else [Path(ctx.out)]


def _evaluated(ctx: StageContext, cfg: EvaluateConfig) -> list[Path]:
    return [rundir.eval_dir(ctx.run, s) / "metrics.json" for s in cfg.folders()]


def _explained(ctx: StageContext, cfg: ExplainConfig) -> list[Path]:
    from saliency.runs import Run

    methods = Run(ctx.run).applicable(cfg.methods)[0]
    return [rundir.saliency_dir(ctx.run, cfg.split, m) / "meta.json" for m in methods]


S = "saliency.stages."
BUILTIN: tuple[Stage, ...] = (
    Stage("data", DataConfig, S + "data:run_stage",
          "synthetic faces, an imported data set or a manifest, checked",
          outputs=_data_manifest, clears=_data_folder, context=("out", "workers"),
          in_study=True),
    Stage("synth", SynthConfig, S + "data:run_synth",
          "render a planted-cue face data set with exact landmarks and region masks",
          outputs=_in_out("manifest.csv"), clears=_in_out(""), context=("out", "workers"),
          in_study=False,
          description="Render synthetic faces whose class information sits only in the cued "
          "regions. Writes images/, masks/, manifest.csv (with 68 landmarks) and synth.json."),
    Stage("align", AlignConfig, S + "align:run_stage",
          "detect, landmark and align faces to the canonical crop", ("data",),
          _in_out("manifest.csv"), _in_out(""), ("manifest", "out", "device", "workers")),
    Stage("regions", RegionsConfig, S + "regions:run_stage",
          "region masks for every face of a manifest, and a preview sheet", ("data", "align"),
          _in_out("manifest.csv"), _in_out(""), ("manifest", "out", "device")),
    Stage("train", TrainConfig, S + "train:run_stage",
          "train the CAM-ready ResNet (or Inception v3, VGG16-GAP)", ("data", "align", "regions"),
          _in_run("checkpoints/best.pt", "train_log.csv"), _in_run("checkpoints", "train_log.csv"),
          ("manifest", "run", "device", "workers"), sharded=True),
    Stage("adopt", AdoptConfig, S + "adopt:run_stage",
          "make a run from an external model, so every later command works on it",
          ("data", "align", "regions"), _in_run("checkpoints/best.pt"),
          _in_run("checkpoints", "model"), ("manifest", "out"), resumable=False),
    Stage("evaluate", EvaluateConfig, S + "evaluate:run_stage",
          "predictions and metrics per class, subgroup and cell", ("train", "adopt"),
          _evaluated, _in_run("eval"), RUN_CONTEXT, sharded=True),
    Stage("attributes", AttributesConfig, S + "attributes:run_stage",
          "per-image brightness, hair over the face, face area; their relation to errors per "
          "cell", ("evaluate", "regions"), _in_run("attributes/gaps.csv"),
          _in_run("attributes"), ("run", "workers"),
          description="Skin brightness (mean L*), hair over the face (share of the face oval "
          "and forehead labelled hair) and visible face area from the evaluated images and "
          "their region masks; per cell their distributions, accuracy per quantile bin, and "
          "the cell's gap as a penalized logistic regression's AME without and with them, "
          "and on a subset matched on them."),
    Stage("explain", ExplainConfig, S + "explain:run_stage",
          "per-image maps (cam, gradcam family, ig)", ("train", "adopt"), _explained,
          _in_run("saliency"), RUN_CONTEXT + ("overwrite",),
          description=lambda: "Methods: " + ", ".join(available()) + ". Maps are raw (signed, "
          "unnormalized) at the model's input size.", sharded=True),
    Stage("average", AverageConfig, S + "average:run_stage",
          "average maps per outcome, group and class", ("explain", "evaluate"),
          _in_run("averages"), _in_run("averages"), ("run", "workers"),
          description="Average stored maps after an explicit per-image normalization; e.g. "
          "--split incorrect --group AA_F."),
    Stage("share", ShareConfig, S + "share:run_stage", "attribution share per facial region",
          ("explain", "evaluate"), _in_run("share"), _in_run("share"), ("run", "workers"),
          sharded=True),
    Stage("ablate", AblationConfig, S + "ablate:run_stage",
          "region masking ablations, e.g. --region eyes", ("train", "adopt"),
          _in_run("ablation"), _in_run("ablation"), RUN_CONTEXT,
          description="delete fills the region (dilated and feathered, DESIGN.md's recipe); "
          "keep fills everything but it. All regions go through one pass over the data.",
          sharded=True),
    Stage("null", NullConfig, S + "null:run_stage",
          "train and explain the null model (shuffled labels) for verdicts", ("train", "explain"),
          _in_run("null/checkpoints/best.pt"), _in_run("null", "nulls"), RUN_CONTEXT, sharded=True),
    Stage("agreement", AgreementConfig, S + "agreement:run_stage",
          "ablation vs attribution share: rank agreement and the recovered verdict",
          ("share", "ablate", "null"), _in_run("agreement"), _in_run("agreement")),
    Stage("validate", ValidateConfig, S + "validate:run_stage",
          "are the explanations right: planted cues, randomization, deletion",
          ("explain", "ablate", "null"), _in_run("validation/validation.json"),
          _in_run("validation"), RUN_CONTEXT, sharded=True),
    Stage("figures", FiguresConfig, S + "figures:run_stage",
          "publication figures (PDF and PNG) and tables from a run's files",
          ("evaluate", "explain", "average", "share", "ablate", "validate", "attributes"),
          _in_run("figures"),
          _in_run("figures")),
    Stage("report", ReportConfig, S + "report:run_stage",
          "RUN/report.html: one self-contained file (images inline, no network)", ("figures",),
          _in_run("report.html"), _in_run("report.html")),
    Stage("export", ExportConfig, S + "export:run_stage",
          "write the run's model as ONNX or torch.export (pt2), checked against PyTorch",
          in_study=False),
)  # fmt: skip


_FOUND: dict[tuple[str, ...], tuple[Stage, ...]] = {}  # per sys.path: scanning takes ~5 ms


def _plugins() -> tuple[Stage, ...]:
    key = tuple(sys.path)
    if key not in _FOUND:
        _FOUND[key] = _scan()
    return _FOUND[key]


def _scan() -> tuple[Stage, ...]:
    found = []
    for ep in entry_points(group=GROUP):
        stage = ep.load()
        if not isinstance(stage, Stage):
            raise ValueError(f"entry point {ep.name} of {GROUP} is not a saliency Stage record")
        found.append(stage)
    return tuple(found)


def all_stages() -> dict[str, Stage]:
    """Every stage by name: the built-in ones in study order, then other packages'."""
    stages = {s.name: s for s in BUILTIN}
    for s in _plugins():
        if s.name in stages:
            raise ValueError(f"a package registers stage {s.name!r}, which already exists")
        stages[s.name] = s
    return stages


def study_stages() -> tuple[str, ...]:
    """The stages a study may hold, in the order they run."""
    return tuple(n for n, s in all_stages().items() if s.in_study)


def get(name: str) -> Stage:
    stages = all_stages()
    if name not in stages:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(stages)}")
    return stages[name]
