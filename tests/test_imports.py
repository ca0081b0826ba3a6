"""The house rules of the package layout, checked on the source (an AST walk, nothing imported):

- nothing below the roof imports it: no module outside `iaseg.cli` imports `iaseg.cli` (the
  entry point `iaseg/__main__.py`, which only starts it, excepted);
- no import circles inside `src/iaseg`;
- the layer table of docs/code_map.md holds: every module is in one layer, and imports only
  from its own layer or below.

The graph counts every import statement, those inside functions included: an import deferred
into a function (to keep `iaseg --help` fast, or to load an optional dependency late) is still
a dependency, and a circle through one is still a circle in the design. `from a.b import c`
is an edge to the module `a.b.c` when it exists, else to `a.b`. Importing `a.b.c` first runs
`a/b/__init__.py` (and `a/__init__.py`), so it is also an edge to each package on the way, a
package's face being code like any other: `iaseg.checkpoint` importing
`iaseg.inference.metadata` runs `iaseg/inference/__init__.py` and everything that imports. The
packages a module itself lives in are left out (they run before it, whoever imports it).
`if TYPE_CHECKING:` imports count too.
"""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CODE_MAP = ROOT / "docs" / "code_map.md"
ROOF = "iaseg.cli"
ENTRY_POINTS = {"iaseg.__main__"}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def packages_of(name: str) -> list[str]:
    """The packages whose __init__ runs before module `name`: 'a.b.c' -> ['a', 'a.b']."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """{module: modules of iaseg it imports, the packages on the way included} for every module
    under `src`/iaseg."""
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
        edges |= {p for t in edges for p in packages_of(t) if p in files}  # the faces run on the way
        edges -= {name, *packages_of(name)}  # its own packages have run before it
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


def layer_table(text: str) -> dict[str, int]:
    """{module or package: layer} from the Markdown table of docs/code_map.md whose rows read
    `| 2 | \\`checkpoint.py\\`, \\`inference/\\` | what |` (paths relative to src/iaseg)."""
    layers: dict[str, int] = {}
    for line in text.splitlines():
        row = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if not row:
            continue
        for path in re.findall(r"`([^`]+)`", row.group(2)):
            parts = [p for p in path.removesuffix(".py").split("/") if p]
            name = ".".join(["iaseg"] + (parts if parts != ["__init__"] else []))
            if name in layers:
                raise AssertionError(f"{path} is in layers {layers[name]} and {row.group(1)}")
            layers[name] = int(row.group(1))
    return layers


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer of the longest table entry that is `module` or a package holding it (the root
    package's entry, `__init__.py`, is for that file only)."""
    for name in [module] + packages_of(module)[:0:-1]:
        if name in layers:
            return layers[name]
    return None


def layer_violations(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """'module (layer) -> target (layer)' for every import upward, and every module the table
    does not place."""
    found = sorted(f"{m} is in no layer" for m in graph if layer_of(m, layers) is None)
    for m, edges in sorted(graph.items()):
        own = layer_of(m, layers)
        for t in sorted(edges):
            theirs = layer_of(t, layers)
            if own is not None and theirs is not None and theirs > own:
                found.append(f"{m} ({own}) -> {t} ({theirs})")
    return found


def test_nothing_below_the_roof_imports_the_cli():
    graph = import_graph()
    offenders = sorted(m for m, edges in graph.items()
                       if not (m == ROOF or m.startswith(ROOF + ".")) and m not in ENTRY_POINTS
                       and any(t == ROOF or t.startswith(ROOF + ".") for t in edges))
    assert offenders == []


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_every_import_keeps_to_the_layer_table():
    layers = layer_table(CODE_MAP.read_text())
    assert layers, f"no layer table found in {CODE_MAP}"
    assert layer_violations(import_graph(), layers) == []


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


def test_a_circle_through_a_package_face_is_a_circle(tmp_path):
    """Importing a module of a package runs the package's __init__: checkpoint -> inference.meta
    -> inference (the face) -> inference.runners -> checkpoint is a circle although no module
    imports `iaseg.inference` by that name; a package's own modules importing each other through
    its face are not."""
    pkg = tmp_path / "iaseg"
    (pkg / "inference").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "checkpoint.py").write_text("from iaseg.inference.meta import Meta\n")
    (pkg / "inference" / "__init__.py").write_text("from .meta import Meta\nfrom .runners import load\n")
    (pkg / "inference" / "meta.py").write_text("class Meta: pass\n")
    (pkg / "inference" / "runners.py").write_text("from .meta import Meta\n"
                                                  "def load():\n    from iaseg.checkpoint import x\n")
    graph = import_graph(tmp_path)
    assert graph["iaseg.checkpoint"] == {"iaseg.inference", "iaseg.inference.meta"}
    assert graph["iaseg.inference.runners"] == {"iaseg.inference.meta", "iaseg.checkpoint"}
    assert cycles(graph) == [["iaseg.checkpoint", "iaseg.inference", "iaseg.inference.runners"]]
    (pkg / "checkpoint.py").write_text("from iaseg.meta import Meta\n")
    (pkg / "meta.py").write_text("class Meta: pass\n")
    assert cycles(import_graph(tmp_path)) == []


def test_the_layer_table_is_read_and_an_upward_import_found():
    table = ("| layer | packages / modules | what |\n|---|---|---|\n"
             "| 0 | `__init__.py`, `io.py` | x |\n| 1 | `models/`, `models/paths.py` | y |\n"
             "| 2 | `engine/` | z |\n")
    layers = layer_table(table)
    assert layers == {"iaseg": 0, "iaseg.io": 0, "iaseg.models": 1, "iaseg.models.paths": 1, "iaseg.engine": 2}
    assert layer_of("iaseg.models.blocks", layers) == 1 and layer_of("iaseg.visualize", layers) is None
    graph = {"iaseg": set(), "iaseg.io": set(), "iaseg.models.blocks": {"iaseg.engine.step", "iaseg.io"},
             "iaseg.engine.step": {"iaseg.models.blocks", "iaseg.models"}, "iaseg.visualize": set()}
    assert layer_violations(graph, layers) == ["iaseg.visualize is in no layer",
                                               "iaseg.models.blocks (1) -> iaseg.engine.step (2)"]
