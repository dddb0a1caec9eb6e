"""The lab instance: this machine's Docker engine prepared (in a thread) as the CAI instance of the lab recipe."""

from __future__ import annotations

import threading
from typing import Any

from .lab_basics import COMPONENTS, log
from .lab_state import LabState


class LabInstance(LabState):
    def _start_instance(self) -> Any:
        """Begin preparing the lab instance in a thread (the image's content hash takes a second or two: it runs
        while the services start); None when it is off or this machine cannot be the instance."""
        if not self._want_instance:
            return None
        from ..labstack.instance import LabInstance, unavailable

        why = unavailable()
        if why is not None:
            self._instance_info = {
                "state": "unavailable",
                "reason": why.reason,
                "todo": why.todo,
                "message": why.message,
            }
            return None
        base = self._effective_port_base()
        inst = LabInstance(self._state_dir, port=base + len(COMPONENTS) if base is not None else None)
        errors: list[BaseException] = []

        def prepare() -> None:
            try:
                inst.prepare(on_event=lambda e: log.debug("lab: %s", e.text))
            except BaseException as e:  # reported by _join_instance
                errors.append(e)

        thread = threading.Thread(target=prepare, name="lab-instance", daemon=True)
        thread.start()
        return (inst, thread, errors)

    def _join_instance(self, started: Any) -> None:
        if started is None:
            return
        inst, thread, errors = started
        thread.join()
        self._pending_instance = None
        self._instance = inst  # down() also undoes a half-prepared instance (the mount)
        if errors:
            from ..labstack.image import LabImageError
            from ..labstack.instance import BedError

            e = errors[0]
            if not isinstance(e, Exception):
                raise e
            if not isinstance(e, (BedError, LabImageError, OSError)):
                log.debug("lab: preparing the instance failed", exc_info=e)
            self._instance = None
            try:
                inst.down()
            except Exception:
                log.exception("lab: cleaning up the half-prepared instance failed")
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            self._instance_info = {
                "state": "unavailable",
                "reason": reason,
                "todo": "fix that and restart the lab",
                "message": f"no lab instance: {reason}",
            }
            return
        self._instance_info = inst.info()
        self._instance_info["message"] = (
            f"the lab provides an instance: `cai-tui deploy --recipe {self.recipe_path} --yes` starts the CAI stack "
            f"on the local Docker engine (compose project {inst.project})"
        )
