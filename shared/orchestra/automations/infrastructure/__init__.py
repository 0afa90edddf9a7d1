"""Infrastructure adaptation: hour-of-week demand profile -> min/max instances schedule."""

from .plugin import InfrastructureAutomation

__all__ = ["InfrastructureAutomation"]
