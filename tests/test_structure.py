"""The shape of the package, checked: no import cycles, no reaching into another package's private names, no
oversized modules (docs/architecture.md describes the seams these keep honest)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lookalike"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (imports there are for annotations only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(name: str, path: Path, *, runtime_only: bool = True) -> Iterator[tuple[str, list[str], int]]:
    """(imported module, names imported from it, line) for every import of a module, relative ones resolved;
    ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree) if runtime_only else set()
    here = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lookalike"):
                    yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("lookalike"):
                continue
            names = [a.name for a in node.names]
            subs = [n for n in names if f"{target}.{n}" in MODULES]
            for sub in subs:
                yield f"{target}.{sub}", [], node.lineno
            rest = [n for n in names if n not in subs]
            if rest or not subs:
                yield target, rest, node.lineno


def _owner(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_subpackages() -> None:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        if name == "lookalike":
            continue  # the top-level package only re-exports
        src = _owner(name, 2)
        for target, _names, _line in _imports(name, path):
            dst = _owner(target, 2)
            if dst != src and dst != "lookalike":
                edges.setdefault(src, set()).add(dst)
    assert _cycles(edges) == []


def test_no_import_cycle_between_modules_of_one_subpackage() -> None:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        package = name if _is_package(name) else name.rpartition(".")[0]
        for target, _names, _line in _imports(name, path):
            same = target == package or target.startswith(package + ".")
            if same and target != name and not (_is_package(name) and target.startswith(name + ".")):
                edges.setdefault(name, set()).add(target)  # a package's __init__ importing its modules is fine
    assert _cycles(edges) == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_imports_another_packages_private_names() -> None:
    bad = []
    for name, path in MODULES.items():
        src = _owner(name, 2)
        for target, names, line in _imports(name, path, runtime_only=False):
            if _owner(target, 2) == src or target == "lookalike":
                continue
            private = [p for p in target.split(".") if _private(p)] + [n for n in names if _private(n)]
            if private:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} {names}")
    assert bad == []


# Attributes that look private but are not another package's internals: numpy/PIL/faiss API spellings.
_FOREIGN_API = {"_asdict", "_replace", "_fields", "_make", "_getexif"}


def _private_attribute_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _private(node.attr) or node.attr in _FOREIGN_API:
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        out.append(f"{path.relative_to(ROOT)}:{node.lineno} reads .{node.attr} of {ast.unparse(owner)}")
    return out


# Reads of another object's private attribute that stay inside the class or module that defines it.
_SAME_OWNER = {
    "lookalike/encoders/hashed.py": {"_run"},  # HashedEncoder runs its base encoder's model (both Encoders)
    "lookalike/encoders/hashes.py": {"_hash"},  # type(self)._hash: the class's own hash function
    "lookalike/hashing/base.py": {"_validate_params", "_learned", "_param_names"},  # Hasher on Hasher instances
    # the efficientnet_lite_pytorch model's own layers (a third-party torch module), run stage by stage
    "lookalike/encoders/efficientnet.py": {"_conv_stem", "_bn0", "_swish", "_blocks", "_conv_head", "_bn1"},
}


@pytest.mark.parametrize("root", ["lookalike", "benchmarks"])
def test_no_module_reads_private_attributes_of_other_objects(root: str) -> None:
    bad = []
    for path in sorted((ROOT / root).rglob("*.py")):
        allowed = _SAME_OWNER.get(str(path.relative_to(ROOT)), set())
        bad += [line for line in _private_attribute_reads(path) if line.split(" reads .")[1].split()[0] not in allowed]
    assert bad == []


def test_no_module_is_over_400_lines_and_the_catalogue_is_a_facade() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 400} == {}
    assert sizes["lookalike/catalog/catalog.py"] <= 320  # "about 300": a façade
