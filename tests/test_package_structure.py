"""The package's import graph: dependencies point one way (no cycles).

The graph is built with :mod:`ast` from the source files, not by importing
them, so it sees every import: module level, inside functions and methods, and
relative ones (resolved against the importing module's package). An edge goes
to the module an import names: ``import a.b`` and ``from a import b`` (with
``b`` a submodule) give ``a.b``; ``from a.b import name`` gives ``a.b`` (the
package ``__init__`` when ``a.b`` is a package). Parent packages that Python
runs on the way are not edges: every child of a package that re-exports its
children would otherwise form a cycle with it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "speechbrain_probe"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_modules(name: str, source: str, is_package: bool, known) -> set[str]:
    """The package modules that module ``name`` (given its source) imports."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module
            targets = [
                f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # ``import a.b.c`` of a name that is not a module: its deepest module
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(files: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its source."""
    files = module_files() if files is None else files
    return {
        name: imported_modules(
            name, path.read_text(encoding="utf-8"), _is_package(path), files
        )
        for name, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or ``None`` when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_reader_sees_every_kind_of_import():
    known = {"p", "p.a", "p.b", "p.sub", "p.sub.c", "p.sub.d", "p.e"}
    source = (
        "import os\n"
        "from p.a import thing\n"
        "from . import b\n"
        "def f():\n"
        "    from .d import other\n"
        "    import p.e.not_a_module\n"
        "class K:\n"
        "    def m(self):\n"
        "        from .. import sub\n"
    )
    assert imported_modules("p.sub.c", source, False, known) == {
        "p.a",
        "p.sub",  # ``from . import b``: b is no module, so the package
        "p.sub.d",
        "p.e",
    }
    # in a package's __init__, ``.`` is the package itself
    assert imported_modules("p.sub", "from .c import x\n", True, known) == {"p.sub.c"}
    assert imported_modules("p.a", "from .sub import c, x\n", False, known) == {
        "p.sub.c",
        "p.sub",
    }


def test_find_cycle_names_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y2"}, "y2": {"y"}}) == ["y", "y2", "y"]


def test_package_has_no_import_cycle():
    graph = import_graph()
    # the reader really reads the package: known edges are there
    assert "speechbrain_probe.hooks" in graph["speechbrain_probe.frozen.interface"]
    assert (
        "speechbrain_probe.frozen.hf_encoder" in graph["speechbrain_probe.frozen.load"]
    )
    assert sum(map(len, graph.values())) > 50
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_list_layers_entry_point_is_imported_by_no_module():
    graph = import_graph()
    assert (
        "speechbrain_probe.frozen.load" in graph["speechbrain_probe.frozen.list_layers"]
    )
    users = [
        m for m, deps in graph.items() if "speechbrain_probe.frozen.list_layers" in deps
    ]
    assert users == []


#: Package-level layers of ``speechbrain_probe`` (a top-level module counts as
#: a package): a package imports only packages of lower layers, so data flows
#: one way: waveform (``data``) -> features -> the frozen ASR and its hooks ->
#: probes -> mel -> vocoder -> metrics -> result rows -> report. The evaluation
#: runs that chain and writes every result file through ``result_rows``; the
#: report and the listening test only read the files; the commands that run
#: several stages sit on top.
LAYERS = {
    # leaves: file writing, optional packages, devices, names and units, and
    # the pieces of the model that read nothing else of the package
    "atomic": 0,
    "extras": 0,
    "devices": 0,
    "vocabulary": 0,
    "features": 0,
    "hooks": 0,
    # what a study reads and writes; checkpoints; the corpora
    "result_rows": 1,
    "study_info": 1,
    "checkpoints": 1,
    "data": 1,
    # the frozen ASR (features, hooks); the corpus environment
    "frozen": 2,
    "environment": 2,
    # what consumes a frozen ASR's layers or the corpora
    "probe": 3,
    "vocoder": 3,
    "metrics": 3,
    "asr": 3,
    "hifigan": 4,
    # the evaluation writes the results; the report and the listening test
    # read them (and never one another)
    "evaluation": 5,
    "report": 5,
    "listening": 5,
    # commands that run several stages
    "compare": 6,
    "study_recipe": 6,
    "pipeline": 6,
    "demo": 7,
    "": 8,  # speechbrain_probe/__init__.py
}


def package_of(module: str) -> str:
    """``speechbrain_probe.report.html`` -> ``report`` (``""`` for the root)."""
    return module.split(".")[1] if "." in module else ""


def layer_violations(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """Every import of a package of the same or a higher layer, as a message."""
    found = []
    for module, targets in sorted(graph.items()):
        own = package_of(module)
        for target in sorted(targets):
            other = package_of(target)
            if other != own and layers[other] >= layers[own]:
                found.append(
                    f"{module} imports {target}: {own} (layer {layers[own]}) may "
                    f"import only packages of lower layers, {other} is layer "
                    f"{layers[other]}"
                )
    return found


def imports_between(graph: dict[str, set[str]], source: str, target: str) -> list:
    """(module, imported module) of package ``source`` importing package ``target``."""
    return sorted(
        (module, imported)
        for module, imports in graph.items()
        if package_of(module) == source
        for imported in imports
        if package_of(imported) == target
    )


def test_every_package_has_a_layer():
    packages = {package_of(m) for m in module_files()}
    assert packages <= set(LAYERS), (
        f"place the new package(s) {sorted(packages - set(LAYERS))} in LAYERS"
    )


def test_report_and_evaluation_never_import_one_another():
    graph = import_graph()
    assert imports_between(graph, "report", "evaluation") == []
    assert imports_between(graph, "evaluation", "report") == []


def test_packages_import_only_lower_layers():
    violations = layer_violations(import_graph())
    assert violations == [], "\n".join(violations)


def test_a_lazy_import_of_the_evaluation_in_the_report_is_caught():
    known = {
        "speechbrain_probe.report.section",
        "speechbrain_probe.evaluation",
        "speechbrain_probe.evaluation.paired",
        "speechbrain_probe.result_rows",
    }
    source = (
        "from speechbrain_probe.result_rows import read_paired\n"
        "def f():\n"
        "    from speechbrain_probe.evaluation import paired\n"
    )
    module = "speechbrain_probe.report.section"
    graph = {module: imported_modules(module, source, False, known)}
    assert imports_between(graph, "report", "evaluation") == [
        (module, "speechbrain_probe.evaluation.paired")
    ]
    assert layer_violations(graph) == [
        f"{module} imports speechbrain_probe.evaluation.paired: report (layer 5) "
        "may import only packages of lower layers, evaluation is layer 5"
    ]
