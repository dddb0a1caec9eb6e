"""Stage specs: the documented procedures as data (``screens/<flow>/NN-<stage>.yaml``)."""

from .loader import FlowStages, StageSpecError, load_all, load_flow
from .spec import StageSpec, Step, Text

__all__ = ["FlowStages", "StageSpec", "StageSpecError", "Step", "Text", "load_all", "load_flow"]
