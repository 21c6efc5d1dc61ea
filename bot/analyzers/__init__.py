"""Analyzers: each turns files in a workspace into findings. See bot.analyzers.base."""

from bot.analyzers.bandit import BanditAnalyzer
from bot.analyzers.base import Analyzer, AnalyzerError, AnalyzerResult
from bot.analyzers.ruff import RuffAnalyzer
from bot.analyzers.semgrep import SemgrepAnalyzer

__all__ = ["Analyzer", "AnalyzerError", "AnalyzerResult", "BanditAnalyzer", "RuffAnalyzer", "SemgrepAnalyzer"]
