"""The wizard's screens: choose a flow, then walk its stages.

Imported on first use: the flow screen pulls in the stage specs' models, which the first paint does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .flow import FlowScreen
    from .start import StartScreen

__all__ = ["FlowScreen", "StartScreen"]


def __getattr__(name: str) -> Any:
    if name == "FlowScreen":
        from .flow import FlowScreen

        return FlowScreen
    if name == "StartScreen":
        from .start import StartScreen

        return StartScreen
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
