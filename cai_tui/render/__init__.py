"""Generated files and command lines (cai.env, compose, TNG, Helm, CNI…): one renderer per artifact kind.

Rendering without ``resolve`` shows each secret as ``<from REF>``; with ``resolve`` (only when writing a file) the
values are filled in and every one joins :data:`cai_tui.recipe.REDACTOR`.
"""

from .base import Rendered, Renderer, RenderError
from .registry import all_ids, for_flow, get

__all__ = ["RenderError", "Rendered", "Renderer", "all_ids", "for_flow", "get"]
