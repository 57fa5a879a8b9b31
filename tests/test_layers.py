"""Imports run one way (DESIGN.md, "Module layout"): runtime/rundir/settings at the ground,
then data, faces, models, perturb and methods, analysis, configs, runs and viz, stages, the
study runner, cli; no module imports itself back through others; and no stage imports
another stage. Read from the source (ast), every import, lazy ones included."""

import ast
from pathlib import Path

import saliency

ROOT = Path(saliency.__file__).parent
GROUND = {"__init__", "runtime", "rundir", "binomial", "atomic", "settings", "distributed", "parts",
          "runlock", "imsize"}  # fmt: skip
RANK = {
    "ground": 0, "data": 1, "faces": 2, "models": 3, "perturb": 4, "methods": 4,
    "analysis": 5, "configs": 6, "viz": 7, "runs": 8, "stages": 9, "study": 10, "cli": 11,
    "__main__": 12,
}  # fmt: skip


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in GROUND:
        return "ground"
    return parts[1]


FILES = {}  # module name -> path, filled below


def _imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """``(line, module)`` for every saliency module ``path`` imports. ``from pkg import sub``
    counts as importing ``pkg.sub`` when that is a module (else ``pkg``)."""
    found = []
    module = module or _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            subs = [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in FILES]
            found += [(node.lineno, m) for m in subs] or [(node.lineno, name)]
    return [(n, m) for n, m in found if m == "saliency" or m.startswith("saliency.")]


def _graph() -> dict[str, dict[str, tuple[Path, int]]]:
    graph = {}
    for mod, path in FILES.items():
        edges = {}
        for line, name in _imports(path):
            target = name if name in FILES else name.rpartition(".")[0]
            if target in FILES and target != mod:
                edges.setdefault(target, (path, line))
        graph[mod] = edges
    return graph


FILES.update({_module(p): p for p in ROOT.rglob("*.py")})


def test_the_layer_ranks_cover_every_package():
    packages = {_layer(_module(p)) for p in ROOT.rglob("*.py")}
    assert packages <= set(RANK), packages - set(RANK)
    assert {
        "data",
        "faces",
        "models",
        "perturb",
        "methods",
        "analysis",
        "viz",
        "stages",
        "cli",
    } <= packages


def test_imports_run_one_way():
    bad = []
    for mod, edges in _graph().items():
        me = _layer(mod)
        for target, (path, line) in edges.items():
            them = _layer(target)
            if them != me and RANK[them] >= RANK[me]:
                bad.append(
                    f"{path.relative_to(ROOT.parent)}:{line} ({me}) imports {target} ({them})"
                )
    assert not bad, "imports against the data flow:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_a_violation(tmp_path):
    # the rules themselves: a viz module importing a stage, or data importing models, is caught
    assert RANK[_layer("saliency.stages.share")] > RANK[_layer("saliency.viz.share")]
    assert RANK[_layer("saliency.models.train")] > RANK[_layer("saliency.data.manifest")]
    assert _layer("saliency.rundir") == _layer("saliency.atomic") == "ground"
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from saliency.stages import share\n")
    found = [m for _, m in _imports(f, "saliency.viz.x")]
    assert found == ["saliency.stages.share"]
    graph = _graph()
    assert "saliency.stages.contract" in graph["saliency.cli.stage_command"]  # lazy ones count


SHARED_STAGE_MODULES = {"saliency.stages.contract", "saliency.stages.registry"}


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "stages" else None


def test_no_stage_imports_another_stage():
    # a stage reads earlier stages' files through saliency.runs and runs other stages through
    # the registry; only the contract and the registry are shared
    bad = []
    for mod, edges in _graph().items():
        me = _stage_of(mod)
        if me is None or mod in SHARED_STAGE_MODULES:
            continue
        for target, (path, line) in edges.items():
            them = _stage_of(target)
            if them is not None and them != me and target not in SHARED_STAGE_MODULES:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target}")
    assert not bad, "stage modules importing other stages:\n" + "\n".join(bad)


def test_the_stage_rule_sees_a_violation():
    assert _stage_of("saliency.stages.figures.maps") == "figures"
    assert _stage_of("saliency.stages.validate") == "validate"
    assert _stage_of("saliency.runs.model") is None
