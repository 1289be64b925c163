"""What the import contracts cannot say as a deny-list: the core's whole list of dependencies."""

from __future__ import annotations

import sys

import grimp

#: What `pip install hafen` brings (pyproject.toml's dependencies), by import name.
CORE_DEPENDENCIES = {
    "typer",
    "pydantic",
    "pydantic_core",
    "cryptography",
    "packaging",
}  # pydantic brings its core


def test_the_core_imports_only_the_standard_library_and_its_own_dependencies():
    """Every import of the core outside the CLI (which wires the components lazily) is the
    standard library, the core itself, or a dependency the core install brings."""
    graph = grimp.build_graph("hafen", include_external_packages=True, cache_dir=None)
    allowed = CORE_DEPENDENCIES | set(sys.stdlib_module_names) | {"hafen"}
    strays = {
        f"{module} -> {imported}"
        for module in graph.modules
        if module.startswith("hafen") and not module.startswith("hafen.cli")
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.split(".")[0] not in allowed
    }
    assert not strays, f"the core imports outside its dependencies: {sorted(strays)}"


def test_no_test_module_or_benchmark_imports_a_test_module():
    """What tests share lives in tests/support (issue 12): a test module imported by another
    runs its fixtures' module code twice and ties the two together unseen."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    importing = [
        str(path.relative_to(root))
        for path in [*root.glob("tests/test_*.py"), *root.glob("benchmarks/*.py")]
        if re.search(r"^\s*(from|import) tests\.test_", path.read_text(), re.MULTILINE)
    ]
    assert importing == []
