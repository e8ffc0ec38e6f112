"""The package's shape: layers import downwards only, seams use public names."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "widemm"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_imports(tree: ast.AST) -> list[ast.ImportFrom | ast.Import]:
    """Every import: function-level ones and those under TYPE_CHECKING too.

    A cycle that only type checking sees is still two modules that each need
    the other to be understood.
    """
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def import_graph() -> dict[str, set[str]]:
    files = {module_name(f): f for f in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in all_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        # a package's __init__ only re-exports: importing it is importing its parts
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep] if dep in path else [node, dep]
            if dep not in state and (found := visit(dep, [*path, dep])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_no_import_cycle_in_the_package():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_explain_and_persistence_know_no_estimator():
    """They use a model, a pipeline and public names only: no estimator, and no
    private member of anything (``x._name``) but their own module's."""
    users = [*PACKAGE.joinpath("explain").glob("*.py"), PACKAGE / "persistence.py"]
    for path in users:
        text = path.read_text()
        assert "widemm.estimators" not in text, path
        private = [
            node.attr
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ]
        assert not private, (path, private)


def test_modules_stay_short():
    long = {
        str(f.relative_to(PACKAGE)): n
        for f in PACKAGE.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > 400
    }
    assert not long, f"split these modules: {long}"


def test_no_line_packing_markers():
    """Formatting is ruff's: no ``# fmt: skip`` packs lines to fit a limit."""
    packed = [
        str(f.relative_to(PACKAGE))
        for f in PACKAGE.rglob("*.py")
        if "fmt: skip" in f.read_text() or "fmt: off" in f.read_text()
    ]
    assert not packed, packed
