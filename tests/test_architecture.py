"""Dependencies run one way: entry points (cli) -> bot.server -> bot.platforms -> the core.

Checked on the source: every ``import``/``from`` of a ``bot`` module, wherever it sits in a file
(function-level imports included, which is where cycles used to hide)."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"
ENTRY = {"bot.cli", "bot.__main__"}
#: What bot.server may import of bot.platforms: the neutral layer and the registry, no platform.
SERVER_MAY_IMPORT = {"bot.platforms", "bot.platforms.base", "bot.platforms.registry"}


def _module(path: Path) -> str:
    parts = path.relative_to(BOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "bot" or name.startswith("bot.")}


def _modules() -> dict[str, set[str]]:
    return {_module(path): _imports(path) for path in sorted(BOT.rglob("*.py"))}


def _layer(module: str) -> str:
    if module in ENTRY:
        return "entry"
    if module.startswith("bot.server"):
        return "server"
    if module.startswith("bot.platforms"):
        return "platforms"
    return "core"


def _is_module(name: str, modules: dict[str, set[str]]) -> bool:
    return name in modules


def test_no_import_runs_against_the_layers():
    modules = _modules()
    order = {"core": 0, "platforms": 1, "server": 2, "entry": 3}
    wrong = [
        f"{module} ({_layer(module)}) imports {name} ({_layer(name)})"
        for module, names in modules.items()
        for name in names
        if _is_module(name, modules) and order[_layer(name)] > order[_layer(module)]
    ]
    assert wrong == []


def test_the_server_names_no_platform():
    modules = _modules()
    wrong = [
        f"{module} imports {name}"
        for module, names in modules.items()
        if _layer(module) == "server"
        for name in names
        if _is_module(name, modules) and name.startswith("bot.platforms") and name not in SERVER_MAY_IMPORT
    ]
    assert wrong == []


def test_only_the_registry_and_the_platform_itself_name_a_platform():
    """A platform's modules (github, github_events) import the shared layer and each other, never
    another platform's; the shared modules of bot.platforms and the core import no platform."""
    from bot.platforms.registry import PLATFORMS

    names = {spec.name for spec in PLATFORMS}
    modules = _modules()

    def family(module: str) -> str | None:
        if not module.startswith("bot.platforms."):
            return None
        leaf = module.split(".")[2].split("_")[0]
        return leaf if leaf in names else None

    wrong = [
        f"{module} imports {name}"
        for module, imported in modules.items()
        if _layer(module) in ("core", "platforms") and module != "bot.platforms.registry"
        for name in imported
        if _is_module(name, modules) and family(name) is not None and family(name) != family(module)
    ]
    assert wrong == []
