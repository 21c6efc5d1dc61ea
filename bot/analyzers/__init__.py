"""Analyzers: each turns files in a workspace into findings. See bot.analyzers.base.

``traits_of(tool)`` is what the filter and the reporter know of a tool: each analyzer declares
its :class:`Traits`; a tool not listed here gets the defaults.
"""

from bot.analyzers.bandit import BanditAnalyzer
from bot.analyzers.base import Analyzer, AnalyzerError, AnalyzerResult, Traits
from bot.analyzers.ruff import RuffAnalyzer
from bot.analyzers.semgrep import SemgrepAnalyzer

ANALYZERS = (BanditAnalyzer, SemgrepAnalyzer, RuffAnalyzer)
TRAITS: dict[str, Traits] = {cls.name: cls.traits for cls in ANALYZERS}
_DEFAULT = Traits()


def traits_of(tool: str) -> Traits:
    return TRAITS.get(tool, _DEFAULT)


__all__ = [
    "ANALYZERS",
    "Analyzer",
    "AnalyzerError",
    "AnalyzerResult",
    "BanditAnalyzer",
    "RuffAnalyzer",
    "SemgrepAnalyzer",
    "Traits",
    "traits_of",
]
