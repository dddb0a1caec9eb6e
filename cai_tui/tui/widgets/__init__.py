"""Widgets that render stage specs."""

from .field_view import FieldView
from .stage_detail import StageDetail
from .step_view import StepView

__all__ = ["FieldView", "StageDetail", "StepView"]
