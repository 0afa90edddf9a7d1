"""Performance enhancement: sustained-breach analysis of Cloud Run metrics and setting changes."""

from .plugin import PerformanceAutomation

__all__ = ["PerformanceAutomation"]
