"""The wizard's screens: choose a flow, then walk its stages."""

from .flow import FlowScreen
from .start import StartScreen

__all__ = ["FlowScreen", "StartScreen"]
