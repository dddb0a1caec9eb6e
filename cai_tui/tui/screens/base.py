"""A screen that follows the app's language: footer bindings and every text it shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

from ..i18n import relabel_bindings

if TYPE_CHECKING:
    from ..app import CaiTuiApp
    from ..state import WizardState


class LocalizedScreen(Screen[None]):
    @property
    def wizard(self) -> CaiTuiApp:
        from ..app import CaiTuiApp

        assert isinstance(self.app, CaiTuiApp)
        return self.app

    @property
    def state(self) -> WizardState:
        return self.wizard.state

    def on_mount(self) -> None:
        self.prepare()
        # screens further down the stack follow too, so Back shows them in the current language
        self.watch(self.app, "lang", self._lang_changed, init=True)

    def _lang_changed(self, lang: str) -> None:
        relabel_bindings(self, lang)
        self.apply_lang(lang)

    def prepare(self) -> None:
        """Set initial selections once the widgets exist."""

    def apply_lang(self, lang: str) -> None:
        """Put every text of the screen in ``lang``, keeping selections as they are."""
