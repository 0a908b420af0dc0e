"""The project's code is one installed package whose import name is its own, imported one way everywhere."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import distribution, packages_distributions

from clever_attendance.sandbox.wiring import ROOT

FOLDERS = ("dags", "plugins", "clever_attendance", "tests", "bench")


def imported_top_names(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            names.add(node.module.split(".")[0])
    return names


def test_the_package_claims_one_top_level_name_that_no_other_distribution_uses():
    owners = packages_distributions()
    ours = {name for name, dists in owners.items() if "clever-attendance" in dists}
    assert ours == {"clever_attendance"}
    assert set(owners["clever_attendance"]) == {"clever-attendance"}  # listed once per record of the editable install
    for clash in ("clever", "safety_shield", "sandbox", "demo", "include", "bench", "attendance_alerts"):
        assert clash not in ours, f"{clash} is the import name of another project"


def test_every_import_is_the_standard_library_an_installed_distribution_or_the_package():
    known = set(sys.stdlib_module_names) | set(packages_distributions())
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            bare = imported_top_names(path) - known
            assert not bare, f"{path.relative_to(ROOT)} imports {bare}: only a folder on sys.path would find it"
            if path.name != "test_package.py":
                assert "sys.path" not in path.read_text() and "PYTHONPATH" not in path.read_text(), path


def test_airflow_finds_the_provider_through_its_entry_point():
    (entry,) = [e for e in distribution("clever-attendance").entry_points if e.group == "apache_airflow_provider"]
    info = entry.load()()
    assert info["package-name"] == "clever-attendance"
    assert [c["connection-type"] for c in info["connection-types"]] == ["clever", "safety_shield"]


def test_plugins_hold_only_airflow_plugins():
    for path in (ROOT / "plugins").rglob("*.py"):
        assert "AirflowPlugin" in path.read_text(), f"{path}: plugins/ is for Airflow plugins only"


def module_imports(path) -> set[str]:
    """The package's modules a module imports when it is loaded (imports inside functions are deferred)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clever_attendance"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if module_path(candidate).exists() else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("clever_attendance")}
    return found


def module_path(name: str):
    base = ROOT / name.replace(".", "/")
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def test_the_package_has_no_import_cycles():
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "clever_attendance").rglob("*.py")}
    graph = {name: module_imports(path) for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, f"import cycle: {' -> '.join(trail[trail.index(name):] + (name,))}"
        if name in done:
            return
        for imported in graph.get(name, ()):
            visit(imported, (*trail, name))
        done.add(name)

    for name in graph:
        visit(name, ())
    assert "clever_attendance.pipeline.tasks" in graph and graph["clever_attendance.pipeline.factory"]


# the domain: what the pipeline decides, without Airflow; the wiring (DAGs, tasks, callbacks, hooks, operators,
# the ledger, the board) imports it, never the other way
DOMAIN = ("config", "window", "transform", "schemas", "guard", "report", "mirror", "records")
DOMAIN_MAY_IMPORT = ("clever_attendance.errors", "clever_attendance.settings",
                     *(f"clever_attendance.pipeline.{name}" for name in DOMAIN))


def upward_imports(source: str, filename: str = "<source>") -> set[str]:
    """What a domain module imports that is Airflow or the project's wiring, at any depth of the module."""
    found = set()
    for node in ast.walk(ast.parse(source, filename)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        for name in names:
            if name.split(".")[0] == "airflow" or (name.startswith("clever_attendance")
                                                   and not name.startswith(DOMAIN_MAY_IMPORT)):
                found.add(name)
    return found


def test_the_domain_imports_neither_airflow_nor_the_wiring():
    for name in DOMAIN:
        path = ROOT / "clever_attendance" / "pipeline" / f"{name}.py"
        assert upward_imports(path.read_text(), str(path)) == set(), f"pipeline/{name}.py imports upward"
    planted = "from clever_attendance.pipeline.config import District\nfrom airflow.sdk import BaseHook\n" \
              "def f():\n    from clever_attendance.ledger.read import share\n"
    assert upward_imports(planted) == {"airflow.sdk", "clever_attendance.ledger.read"}, "the check sees them"
