"""No module imports another module's private names (a leading underscore): what modules share is public."""

from __future__ import annotations

import ast

from conftest import REPO


def test_no_private_names_are_imported_across_modules():
    src = REPO / "src"
    found = []
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                continue
            base = path.parent.joinpath(*[".."] * max(node.level - 1, 0))
            for alias in node.names:
                name = alias.name
                private = name.startswith("_") and not name.startswith("__")
                a_module = node.level and (
                    base / (node.module or "").replace(".", "/") / f"{name}.py").exists()
                if private and not a_module:  # a package's private submodule may be imported by its siblings
                    found.append(f"{path.relative_to(src)}:{node.lineno} imports {name} from {node.module}")
    assert found == []
