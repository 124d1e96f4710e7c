"""No import circles among the modules of xlt_utils (#38 item 4): a newcomer can read the package bottom-up.

The graph comes from the source (AST), not from running it, and counts every import: module-level ones and those
inside functions (lazy imports still tie two modules together). ``import a.b`` is an edge to ``a.b``;
``from a import b`` is an edge to ``a`` and, where ``a.b`` is a module, to ``a.b`` too, so a submodule that
imports a sibling through its package (``from xlt_utils.synth import world``) depends on that package's
``__init__``. Relative imports are resolved. A cycle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "xlt_utils"


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``root``."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def statements(tree: ast.AST):
    """Every statement of a module, nested ones included (imports are statements: expressions are skipped)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(child for child in ast.iter_child_nodes(node)
                    if isinstance(child, (ast.stmt, ast.ExceptHandler, ast.match_case)))


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """module -> {imported module of the same package: line of the first such import}."""
    mods = module_files(root)
    graph: dict[str, dict[str, int]] = {m: {} for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in statements(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                if target in mods and target != mod:
                    graph[mod].setdefault(target, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start, successors_of_start in graph.items():
        if start in index:
            continue
        work = [(start, iter(successors_of_start))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def describe(component: set[str], graph: dict[str, dict[str, int]]) -> str:
    files = module_files(PACKAGE)
    lines = [f"  {a} -> {b}  ({files[a].relative_to(PACKAGE.parent)}:{graph[a][b]})"
             for a in sorted(component) for b in sorted(graph[a]) if b in component]
    return "\n".join(lines)


def test_no_import_cycles_in_xlt_utils():
    graph = import_graph(PACKAGE)
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the package was read
    found = cycles(graph)
    assert not found, "import cycles (move the shared piece to the module that owns it):\n" + "\n\n".join(
        describe(c, graph) for c in found)


def test_the_analysis_sees_lazy_imports_and_imports_through_a_package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from pkg import b\n",  # lazy, and through the package: pkg and pkg.b
        "b.py": "import pkg.c as c\n",
        "c.py": "from . import a\n",  # relative
        "sub/__init__.py": "from pkg.sub.leaf import X\n",
        "sub/leaf.py": "from pkg.sub import other\nX = 1\n",  # back to its package's __init__
        "sub/other.py": "",
    }
    for name, text in files.items():
        (pkg / name).write_text(textwrap.dedent(text))
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg": 2, "pkg.b": 2}
    assert graph["pkg.c"] == {"pkg": 1, "pkg.a": 1}
    assert sorted(sorted(c) for c in cycles(graph)) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.sub", "pkg.sub.leaf"]]
