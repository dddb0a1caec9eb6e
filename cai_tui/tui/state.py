"""What the wizard knows: the flows' stage specs, the recipe being edited, each stage's status and the lab.

One place for it, so every screen edits one :class:`~cai_tui.recipe.draft.Draft` and drives one engine
:class:`~cai_tui.engine.session.Session` (rebuilt when the recipe changed since it was made).
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.session import Session
    from ..recipe import LoadedRecipe
    from ..recipe.draft import Draft
    from ..stages import FlowStages

# a stage's status in the side bar
NOT_STARTED, IN_PROGRESS, PASSED, FAILED, WAIVED = "not-started", "in-progress", "passed", "failed", "waived"
STATUSES = (NOT_STARTED, IN_PROGRESS, PASSED, FAILED, WAIVED)

StatusListener = Callable[[str, str], None]  # (stage id, status)


def shipped_flow_ids() -> tuple[str, ...]:
    """The flows that have a stage folder (``screens/<flow>/``), known without reading a spec."""
    from ..resources import data_dir

    return tuple(sorted(p.name for p in data_dir("screens").iterdir() if p.is_dir() and any(p.glob("*.yaml"))))


class FlowsOnDemand(Mapping[str, "FlowStages"]):
    """The shipped flows' stage specs, read on first use.

    Parsing and validating every spec costs more than the whole first paint, so the start screen lists the flows
    by id and :meth:`load` runs once something needs a stage (the start screen calls it in a worker after it is
    painted; a screen that needs a flow sooner waits for the same load). A broken spec raises StageSpecError there.
    """

    def __init__(
        self,
        flow_ids: tuple[str, ...] | None = None,
        read: Callable[[], Mapping[str, FlowStages]] | None = None,
    ) -> None:
        """``read`` replaces the shipped specs' loader (``stages.load_all``, cached per process)."""
        self._ids = flow_ids if flow_ids is not None else shipped_flow_ids()
        self._read = read
        self._flows: Mapping[str, FlowStages] | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._flows is not None

    def load(self) -> Mapping[str, FlowStages]:
        with self._lock:
            if self._flows is None:
                if self._read is None:
                    from ..stages import load_all

                    self._flows = load_all()
                else:
                    self._flows = self._read()
            return self._flows

    def __getitem__(self, flow: str) -> FlowStages:
        if flow not in self._ids:
            raise KeyError(flow)
        return self.load()[flow]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, flow: object) -> bool:
        return flow in self._ids


def flows_ready(flows: Mapping[str, FlowStages]) -> bool:
    """Whether reading a flow's stages costs nothing now (a plain mapping always; FlowsOnDemand once loaded)."""
    return not isinstance(flows, FlowsOnDemand) or flows.ready


@dataclass
class WizardState:
    flows: Mapping[str, FlowStages]
    loaded: LoadedRecipe | None = None
    recipe_problems: list[str] = field(default_factory=list)
    lab_info: dict[str, Any] | None = None
    lab: Any | None = None  # the running cai_tui.lab.orchestrator.Lab (fault switches) under --lab
    status: dict[str, str] = field(default_factory=dict)
    _draft: Draft | None = None
    _listeners: list[StatusListener] = field(default_factory=list)
    _session: Session | None = None
    _stale_sessions: list[Session] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        recipe_path: str | Path | None = None,
        lab_info: dict[str, Any] | None = None,
        flows: Mapping[str, FlowStages] | None = None,
        lab: Any | None = None,
    ) -> WizardState:
        state = cls(flows=flows if flows is not None else FlowsOnDemand(), lab_info=lab_info, lab=lab)
        if recipe_path is not None:
            state.open_recipe(recipe_path)
        return state

    # --- the recipe --------------------------------------------------------------------------------------------------

    def open_recipe(self, path: str | Path) -> list[str]:
        """Load ``path`` as the recipe being edited; its problems (nothing changes then)."""
        from ..recipe import RecipeError, load_recipe

        try:
            loaded = load_recipe(path)
        except RecipeError as e:
            self.recipe_problems = [str(p) for p in e.problems]
            return self.recipe_problems
        self._use(loaded)
        return []

    def new_recipe(self, flow: str) -> None:
        """Start an unsaved recipe for ``flow`` from the flow's documented example (Save asks where)."""
        from ..recipe.examples import example_path
        from ..recipe.yaml_io import loads_recipe

        text = example_path(flow).read_text(encoding="utf-8")
        self._use(loads_recipe(text, name=f"<new {flow} recipe>"))

    def _use(self, loaded: LoadedRecipe) -> None:
        self.loaded = loaded
        self.recipe_problems = []
        self._draft = None
        self.status = {}
        self._retire_session()

    @property
    def draft(self) -> Draft | None:
        """The recipe as being edited (None when none is loaded)."""
        if self._draft is None and self.loaded is not None:
            from ..recipe.draft import Draft

            self._draft = Draft(self.loaded)
        return self._draft

    @property
    def recipe_flow(self) -> str | None:
        return self.loaded.recipe.flow if self.loaded else None

    @property
    def recipe_path(self) -> Path | None:
        return self.loaded.path if self.loaded is not None else None

    def answers_for(self, flow: str) -> Any | None:
        """The recipe's answers when it belongs to ``flow``; a recipe of the other flow has none here."""
        if self.loaded is None or self.loaded.recipe.flow != flow:
            return None
        return self.loaded.recipe.answers

    def save(self, path: str | Path | None = None) -> Path:
        """Save the draft (atomic, comments kept, previous file as .bak); RecipeError when there is nothing to save
        or no path yet."""
        from ..recipe import RecipeError

        draft = self.draft
        if draft is None:
            from ..recipe.problems import Problem

            raise RecipeError([Problem("<wizard>", None, "", "no recipe is open; choose a flow or open a recipe")])
        written = draft.save(path)
        if self.loaded is not None and self.loaded.path is None:
            self.loaded.path = written
        return written

    # --- where the engine puts things ----------------------------------------------------------------------------

    @property
    def files_dir(self) -> Path:
        """Generated files for the workstation: ``<recipe dir>/<stem>.files``, as ``cai-tui replay`` uses."""
        path = self.recipe_path
        if path is None:
            from ..paths import state_dir

            return state_dir() / "wizard.files"
        return Path(path).with_name(Path(path).stem + ".files")

    def replay_command(self, stage_id: str | None = None) -> str:
        """The exact headless command that does what the wizard does for this recipe (or one stage of it)."""
        path = self.recipe_path
        argv = ["cai-tui", "replay", str(path) if path is not None else "RECIPE.yaml"]
        if stage_id is not None:
            argv += ["--only", stage_id]
        return shlex.join(argv)

    # --- stage statuses ------------------------------------------------------------------------------------------

    def stage_status(self, stage_id: str) -> str:
        return self.status.get(stage_id, NOT_STARTED)

    def set_status(self, stage_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"stage status must be one of {', '.join(STATUSES)}, not {status!r}")
        self.status[stage_id] = status
        for listener in list(self._listeners):
            listener(stage_id, status)

    def subscribe(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener`` on every status change; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # --- the engine session --------------------------------------------------------------------------------------

    def session(self, prompt: Callable[[str], str] | None = None) -> Session:
        """The engine session for the recipe as it stands now (a new one when the recipe changed since)."""
        from ..engine.session import Session
        from ..recipe import RecipeError

        if self.loaded is None:
            raise RecipeError([])
        current = self._session
        if current is None or current.recipe is not self.loaded.recipe:
            self._retire_session()
            self._session = Session(self.loaded, prompt=prompt)
        return self._session  # type: ignore[return-value]

    def _retire_session(self) -> None:
        if self._session is not None:
            self._stale_sessions.append(self._session)
            self._session = None

    async def aclose(self) -> None:
        """Close every session's targets (SSH connections); called when the app exits."""
        self._retire_session()
        sessions, self._stale_sessions = self._stale_sessions, []
        for s in sessions:
            await s.aclose()
