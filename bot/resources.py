"""Where the bundled rules and default configuration live.

In a wheel they are packaged under ``bot/_data/``; in a source checkout (editable install, tests)
they are the repository's top-level ``rules/`` and ``config/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_path(*parts: str) -> Path:
    packaged = _PACKAGE.joinpath("_data", *parts)
    if packaged.exists():
        return packaged
    return _PACKAGE.parent.joinpath(*parts)
