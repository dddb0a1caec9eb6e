"""Widgets that render stage specs and edit a stage's fields."""

from .field_editor import FieldEditor, SecretPicker
from .field_view import FieldView
from .stage_detail import StageDetail
from .step_view import StepView

__all__ = ["FieldEditor", "FieldView", "SecretPicker", "StageDetail", "StepView"]
