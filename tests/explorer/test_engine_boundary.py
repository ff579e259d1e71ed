"""The explorer imports only the engine modules ARCHITECTURE.md lists ("What the explorer uses of the engine")."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"errors", "modality", "paths", "cli", "files", "data.store", "data.items", "data.structure", "checkpoint", "embed",
           "query", "significance", "projection", "recipe", "evaluate.evolution", "evaluate.baselines", "evaluate.tmscore",
           "evaluate", "encoders.text"}


def _engine_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine"):
            base = node.module.removeprefix("engine").lstrip(".")
            found |= {f"{base}.{a.name}".lstrip(".") if not base or base == "evaluate" else base for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("engine.") for a in node.names if a.name.startswith("engine.")}
    return found


def test_explorer_uses_only_the_listed_engine_modules():
    used = {(f.relative_to(ROOT).as_posix(), m) for f in (ROOT / "explorer").rglob("*.py") for m in _engine_imports(f)}
    outside = sorted(f"{f}: engine.{m}" for f, m in used if m not in ALLOWED)
    assert not outside, "engine modules the explorer may not use (list them in ARCHITECTURE.md first):\n" + "\n".join(outside)
    documented = (ROOT / "ARCHITECTURE.md").read_text()
    assert all(f"`{m}`" in documented for m in ALLOWED - {"evaluate"})
