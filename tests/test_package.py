"""The project's code is one installed package whose import name is its own, imported one way everywhere."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import distribution, packages_distributions

from clever_attendance_sandbox.wiring import ROOT

FOLDERS = ("dags", "plugins", "clever_attendance", "sandbox", "tests", "bench")


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


# the domain: what the pipeline decides, without Airflow; the wiring (DAGs, tasks, callbacks, hooks, operators, the
# board) imports it, never the other way. The ledger depends on the contracts alone: what the parts hand each other.
DOMAIN = ("config", "window", "transform", "schemas", "columns", "guard", "report", "mirror", "staged_csv")
SHARED = ("clever_attendance.contracts", "clever_attendance.errors", "clever_attendance.settings")
DOMAIN_MAY_IMPORT = (*SHARED, *(f"clever_attendance.pipeline.{name}" for name in DOMAIN))
LEDGER_MAY_IMPORT = (*SHARED, "clever_attendance.ledger")


def runtime_imports(source: str, filename: str = "<source>") -> set[str]:
    """Every module a module imports, at any depth of it, but those it names for type hints alone (TYPE_CHECKING)."""
    tree = ast.parse(source, filename)
    hints = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
             and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" for inner in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        found |= {a.name for a in node.names} if isinstance(node, ast.Import) else \
            {node.module} if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else set()
    return found


def upward_imports(source: str, may_import: tuple[str, ...] = DOMAIN_MAY_IMPORT, filename: str = "<source>"
                   ) -> set[str]:
    """What a module imports that is Airflow or of the project but not `may_import`."""
    return {name for name in runtime_imports(source, filename) if name.split(".")[0] == "airflow"
            or (name.startswith("clever_attendance") and not name.startswith(may_import))}


def test_the_domain_imports_neither_airflow_nor_the_wiring():
    for name in DOMAIN:
        path = ROOT / "clever_attendance" / "pipeline" / f"{name}.py"
        assert upward_imports(path.read_text(), filename=str(path)) == set(), f"pipeline/{name}.py imports upward"
    planted = "from clever_attendance.pipeline.config import District\nfrom airflow.sdk import BaseHook\n" \
              "def f():\n    from clever_attendance.ledger.read import share\n"
    assert upward_imports(planted) == {"airflow.sdk", "clever_attendance.ledger.read"}, "the check sees them"


def test_the_ledger_depends_on_the_contracts_alone():
    """Neither Airflow nor the pipeline: the ledger reads and writes its database with what the contracts define
    (its command line, `python -m clever_attendance.ledger`, wires it to the connection: an entry point)."""
    for path in (ROOT / "clever_attendance" / "ledger").glob("*.py"):
        if path.name != "__main__.py":
            found = upward_imports(path.read_text(), LEDGER_MAY_IMPORT, str(path))
            assert found == set(), f"ledger/{path.name} imports {found}"
    planted = "from clever_attendance.contracts import Status\nfrom clever_attendance.ledger.tables import holds\n" \
              "from clever_attendance.pipeline.guard import HELD\nfrom typing import TYPE_CHECKING\n" \
              "if TYPE_CHECKING:\n    from clever_attendance.pipeline.config import Fleet\n"
    assert upward_imports(planted, LEDGER_MAY_IMPORT) == {"clever_attendance.pipeline.guard"}, "the check sees it"


def test_the_contracts_import_nothing_heavy():
    """The hook and the check read the contracts and the light names (columns) without pandas, pandera or Airflow."""
    for module in ("contracts", "pipeline/columns"):
        path = ROOT / "clever_attendance" / f"{module}.py"
        heavy = {name for name in runtime_imports(path.read_text()) if name.split(".")[0] not in sys.stdlib_module_names
                 and name != "__future__" and name not in SHARED}
        assert heavy == set(), f"{module} imports {heavy}"


# the provider's own distribution, and the one of the sandbox, the demo and the test kit (sandbox/pyproject.toml)
PROVIDER, SANDBOX = "clever-attendance", "clever-attendance-sandbox"
NEVER_DEPLOYED = ("clever_attendance_sandbox", "sandbox", "demo", "testing", "conftest", "tests")


def required_distributions(sources: dict[str, str]) -> dict[str, set[str]]:
    """Each distribution that modules (name → source) import, at any depth, with the modules that import it:
    Airflow's providers by their own distribution, the rest of Airflow as apache-airflow."""
    from packaging.utils import canonicalize_name

    owners = packages_distributions()
    needed: dict[str, set[str]] = {}
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source, name)):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for module in imported:
                parts = module.split(".")
                if parts[0] in sys.stdlib_module_names or parts[0] in ("__future__", "clever_attendance",
                                                                       "clever_attendance_sandbox"):
                    continue
                if parts[0] == "airflow":
                    dist = f"apache-airflow-providers-{parts[2]}" if parts[1:2] == ["providers"] else "apache-airflow"
                else:
                    (dist,) = {canonicalize_name(d) for d in owners[parts[0]]}
                needed.setdefault(canonicalize_name(dist), set()).add(name)
    return needed


def declared(requirements: list[str] | None) -> set[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return {canonicalize_name(Requirement(r).name) for r in requirements or []}


def test_the_provider_wheel_ships_the_provider_alone_and_declares_what_it_imports(tmp_path):
    """What a deployment installs: the wheel pip builds from a clone holds clever_attendance and nothing of the sandbox,
    the demo or the test kit (sandbox/, a distribution of its own), and its metadata requires every distribution the
    provider's modules import."""
    import shutil
    import subprocess
    import zipfile
    from email.parser import Parser

    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(".*", "__pycache__", "build", "*.egg-info"))
    # with pip's build isolation: the setuptools pinned in pyproject.toml's build-system, as `make install` builds
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                            "--wheel-dir", str(tmp_path / "dist"), str(clone)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("clever_attendance-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        modules = {name: archive.read(name).decode() for name in names if name.endswith(".py")}
        metadata = Parser().parsestr(archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())

    assert {name.split("/")[0] for name in names} == {"clever_attendance", wheel.name.split("-py3")[0] + ".dist-info"}
    for name in names:
        shipped = {part.removesuffix(".py") for part in name.split("/")}
        assert not shipped & set(NEVER_DEPLOYED), f"the provider's wheel ships {name}"
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "clever_attendance").rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    assert set(names) >= sources, f"missing from the wheel: {sources - set(names)}"
    assert "clever_attendance/board/templates/base.html" in names

    assert metadata["Name"] == PROVIDER
    requires = declared(metadata.get_all("Requires-Dist"))
    needed = required_distributions(modules)
    assert set(needed) <= requires, {d: sorted(needed[d]) for d in set(needed) - requires}
    # not imported, but used: the attendance ledger's postgres connection type and its psycopg2 driver
    assert requires - set(needed) == {"apache-airflow-providers-postgres"}, requires - set(needed)
    assert not requires & {"clever-attendance-sandbox", "selenium", "uvicorn", "redis", "pytest"}, requires


def test_the_sandbox_is_a_distribution_of_its_own_that_the_provider_never_imports():
    """clever_attendance_sandbox (sandbox/) is installed beside the provider, requires it and whatever its own modules
    import; nothing deployed (the provider, dags/, plugins/) imports it, at any depth."""
    owners = packages_distributions()
    assert set(owners["clever_attendance_sandbox"]) == {SANDBOX}
    assert {name for name, dists in owners.items() if SANDBOX in dists} == {"clever_attendance_sandbox"}
    for folder in ("clever_attendance", "dags", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "clever_attendance_sandbox" not in imported_top_names(path), f"{path.relative_to(ROOT)} imports " \
                "the sandbox: it is never deployed"

    import clever_attendance_sandbox

    package = ROOT / "sandbox" / "clever_attendance_sandbox"
    assert clever_attendance_sandbox.__file__ == str(package / "__init__.py"), "make install: sandbox/, editable"
    requires = declared(distribution(SANDBOX).requires)
    needed = required_distributions({str(p): p.read_text() for p in package.rglob("*.py")})
    assert PROVIDER in requires
    assert set(needed) <= requires, {d: sorted(needed[d]) for d in set(needed) - requires}


def test_the_modules_preloaded_for_task_processes_exist_and_hold_the_transform():
    """A forkserver skips a preload module it cannot import without a word: a renamed module would silently cost
    every task process its imports again. The transform's step (pandas and pandera) is among them, and Celery's
    configuration preloads the same list."""
    import importlib

    from clever_attendance.celery_config import CELERY_CONFIG
    from clever_attendance.settings import TASK_PRELOAD

    for name in TASK_PRELOAD:
        importlib.import_module(name)
    assert "clever_attendance.pipeline.transform_step" in TASK_PRELOAD
    assert CELERY_CONFIG["imports"] == TASK_PRELOAD
