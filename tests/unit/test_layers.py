"""The one-way import rule of DESIGN.md, checked on the source (every module, every import)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"config", "core", "models", "salesforce", "sync", "services", "jobs", "emulator", "auth",
        "workspace", "participants", "research", "integrations", "wizard", "operations", "invite",
        "messages"}
WEB = ["auth", "workspace", "participants", "research", "integrations", "wizard", "operations",
       "invite", "messages"]

# part -> top-level packages it must not import
FORBIDDEN = {
    "salesforce": {"flask", "flask_sqlalchemy", "models", "sync", "services", "core", "jobs", "emulator", *WEB},
    "sync": {"flask", "flask_sqlalchemy", "sqlalchemy", "models", "redis", "rq", "requests", "salesforce",
             "services", "core", "jobs", "emulator", *WEB},
    "models": {"services", "jobs", "salesforce", "sync", "emulator", *WEB},
    "services": {"jobs", "emulator", *WEB},
    "jobs": {"salesforce", "sync", "emulator", *WEB},
    "emulator": OURS - {"emulator"},
    **{web: {"salesforce", "sync", "rq", "jobs", "emulator"} for web in WEB},
}


def _parse(path: Path) -> ast.AST:
    """ast.parse, once more if CPython 3.11 trips over its own AST state (python/cpython#106905 and
    pytest-dev/pytest#10763): another thread's ast.parse at the same moment (3.11 tracebacks run
    one for their carets) can raise "AST constructor recursion depth mismatch" here."""
    try:
        return ast.parse(path.read_text(), filename=str(path))
    except SystemError:
        return ast.parse(path.read_text(), filename=str(path))


def _imports(path: Path):
    tree = _parse(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _modules(part: str):
    base = ROOT / part
    return sorted(base.rglob("*.py")) if base.is_dir() else []


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_part_imports_only_what_the_design_allows(part):
    files = _modules(part)
    assert files, f"{part}/ has no modules"
    violations = [f"{f.relative_to(ROOT)}:{line} imports {name}"
                  for f in files for line, name in _imports(f) if name in FORBIDDEN[part]]
    assert violations == []
