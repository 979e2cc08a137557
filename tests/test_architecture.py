"""The package's shape (docs/ARCHITECTURE.md): imports only downward, short modules, function-level imports only for
heavy dependencies, and the light serving path."""
import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "mtl_classic"
MAX_LINES = 600

#: Modules that may be imported inside a function: they are heavy (scikit-learn, numba, pandas, implicit) and
#: the importing module must stay light without them, or they are the package's lazy public names.
HEAVY = ("sklearn", "numba", "pandas", "implicit", "mtl_classic._topk_kernel", "mtl_classic.model",
         "mtl_classic.solver",
         "mtl_classic.data", "mtl_classic.evaluation", "mtl_classic.baselines", "mtl_classic.datasets",
         "fastapi", "uvicorn", "starlette", "pydantic")


def _modules():
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _targets(module, node):
    """The package modules an import statement of ``module`` loads (the closest module for ``a.b.name``)."""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = base[:len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = [target] + [f"{target}.{a.name}" for a in node.names]
    else:
        names = [a.name for a in node.names]
    found = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def _imports(module):
    """[(target modules, inside a function, the absolute name imported)] of every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.level:
                absolute = ".".join(_package_parts(module, node.level) + ([node.module] if node.module else []))
            else:
                absolute = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            out.append((_targets(module, node), id(node) in inside, absolute))
    return out


def _package_parts(module, level):
    base = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    return base[:len(base) - level + 1]


def _graph():
    graph = {}
    for module in MODULES:
        deps = set().union(*[t for t, _, _ in _imports(module)]) if _imports(module) else set()
        # a package's __init__ re-exporting its own children is not a cycle of design
        if MODULES[module].name == "__init__.py":
            deps = {d for d in deps if not d.startswith(module + ".")}
        graph[module] = deps
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (every import counts, function-level ones included): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_no_module_is_over_the_length_limit():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in MODULES.values()
            if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_function_level_imports_are_only_for_heavy_dependencies():
    offenders = []
    for module in MODULES:
        for _, inside, absolute in _imports(module):
            if inside and not any(absolute == h or absolute.startswith(h + ".") for h in HEAVY):
                offenders.append(f"{module}: {absolute}")
    assert not offenders, f"imports inside functions of light modules: {offenders}"


@pytest.mark.parametrize("module", ["mtl_classic", "mtl_classic.inference", "mtl_classic.serving", "mtl_classic.cli",
                                    "mtl_classic.persistence", "mtl_classic.params", "mtl_classic.ranking"])
def test_the_serving_path_imports_neither_sklearn_numba_nor_pandas(module):
    """The top level and the serving path load numpy and scipy only (the estimator and the solver load lazily,
    PEP 562): an eager import anywhere on the path fails here."""
    code = (f"import sys, {module}; print(','.join(m for m in ('sklearn', 'numba', 'pandas', 'implicit') "
            f"if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"
