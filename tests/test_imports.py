"""The house rules of the package layout, checked on the source (an AST walk, nothing imported):

- nothing below the roof imports it: no module outside `iaseg.cli` imports `iaseg.cli` (the
  entry point `iaseg/__main__.py`, which only starts it, excepted);
- no import circles inside `src/iaseg`.

The graph counts every import statement, those inside functions included: an import deferred
into a function (to keep `iaseg --help` fast, or to load an optional dependency late) is still
a dependency, and a circle through one is still a circle in the design. `from a.b import c`
is an edge to the module `a.b.c` when it exists, else to `a.b`; an import of `a.b.c` is not an
edge to the package `a.b` itself (running `a/b/__init__.py` first is Python's business, not a
dependency of the importing module). `if TYPE_CHECKING:` imports count too.
"""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOF = "iaseg.cli"
ENTRY_POINTS = {"iaseg.__main__"}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """{module: modules of iaseg it imports} for every module under `src`/iaseg."""
    files = {module_name(p, src): p for p in (src / "iaseg").rglob("*.py")}

    def known(name: str | None) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {t for a in node.names if (t := known(a.name))}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for a in node.names:
                    target = files.get(f"{base}.{a.name}") and f"{base}.{a.name}"  # a submodule ...
                    target = target or known(base)                                  # ... or a name in base
                    if target:
                        edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_nothing_below_the_roof_imports_the_cli():
    graph = import_graph()
    offenders = sorted(m for m, edges in graph.items()
                       if not (m == ROOF or m.startswith(ROOF + ".")) and m not in ENTRY_POINTS
                       and any(t == ROOF or t.startswith(ROOF + ".") for t in edges))
    assert offenders == []


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_checks_see_what_they_check(tmp_path):
    """The walk resolves relative imports and function-level imports, and finds a circle made
    only of them, and an import of the roof from below."""
    pkg = tmp_path / "iaseg"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "__init__.py").write_text("from .common import CLIError\n")
    (pkg / "cli" / "common.py").write_text("class CLIError(Exception): pass\n")
    (pkg / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "b.py").write_text("from iaseg.a import f\nfrom iaseg.cli import CLIError\n")
    graph = import_graph(tmp_path)
    assert graph["iaseg.a"] == {"iaseg.b"} and graph["iaseg.b"] == {"iaseg.a", "iaseg.cli"}
    assert graph["iaseg.cli"] == {"iaseg.cli.common"}
    assert cycles(graph) == [["iaseg.a", "iaseg.b"]]
