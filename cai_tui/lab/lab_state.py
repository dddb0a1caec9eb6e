"""The state a :class:`~cai_tui.lab.orchestrator.Lab` holds, and what the lab offers while it runs (endpoints, files,
the components, the ready line's document, health)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .admin import AdminHTTPServer
from .demo import (
    DemoSeed,
)
from .faults import FAULTS, FaultSwitches
from .kms import KmsLab
from .lab_basics import CREDENTIALS_FILE, RECIPE_FILE, SEEDS, LabKeys, _initial_faults, _probe, default_state_dir, log
from .oss import OssLab
from .trustee import TrusteeLab, TrusteeSettings


class LabState:
    """The lab's state and accessors; :class:`~cai_tui.lab.orchestrator.Lab` adds the lifecycle, the instance and
    the seeding."""

    def __init__(
        self,
        state_dir: Path | str | None = None,
        port_base: int | None = None,
        faults: str | dict[str, float | None] = "",
        trustee_settings: TrusteeSettings | None = None,
        *,
        seed: str = "demo",
        instance: bool = False,
        preferred_port_base: int | None = None,
    ) -> None:
        """``seed``: ``demo`` or ``bare``; ``instance``: make the local Docker engine the lab instance when it can;
        ``preferred_port_base``: the port base while ``port_base`` is None, unless this lab had to take a side-by-side
        state directory (then ephemeral ports)."""
        for base in (port_base, preferred_port_base):
            if base is not None and not 1 <= base <= 65535 - 3:
                raise ValueError(f"port_base must be between 1 and 65532, not {base}")
        if seed not in SEEDS:
            raise ValueError(f"seed must be one of {', '.join(SEEDS)}, not {seed!r}")
        self._auto_state = state_dir is None
        self._state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self._port_base = port_base
        self._preferred_port_base = preferred_port_base
        self._seed = seed
        self._want_instance = instance
        self._instance: Any = None  # a LabInstance once prepared
        self._pending_instance: Any = None  # (LabInstance, thread, errors) while it is being prepared
        self._instance_info: dict[str, Any] = {"state": "off", "message": "the lab was started without an instance"}
        self.side_by_side_note: str | None = None
        self._start_faults = _initial_faults(faults)  # raises UnknownFault before anything starts
        if trustee_settings is None:
            trustee_settings = TrusteeSettings(
                protocol_version="0.1.0", flavour="alibaba", release="trustee", backend="kms"
            )
        trustee_settings.validate()
        self._settings = trustee_settings
        self._faults = FaultSwitches()
        self._faults.subscribe(self._log_fault)
        self._kms: KmsLab | None = None
        self._oss: OssLab | None = None
        self._trustee: TrusteeLab | None = None
        self._admin: AdminHTTPServer | None = None
        self._lock_fd: int | None = None
        self._keys: LabKeys | None = None
        self._demo: DemoSeed | None = None
        self._running = False

    def _effective_port_base(self) -> int | None:
        if self._port_base is not None:
            return self._port_base
        return self._preferred_port_base if self.side_by_side_note is None else None

    @staticmethod
    def _log_fault(name: str, on: bool) -> None:
        log.info("lab: fault %s %s", name, "on" if on else "off")

    def _need(self, component: Any, what: str) -> Any:
        if component is None:
            raise RuntimeError(f"the lab is not running ({what} is only known while it runs)")
        return component

    @property
    def running(self) -> bool:
        return self._running

    @property
    def state_dir(self) -> Path:
        return self._state_dir

    @property
    def faults(self) -> FaultSwitches:
        return self._faults

    @property
    def settings(self) -> TrusteeSettings:
        return replace(self._settings)

    @property
    def trustee_url(self) -> str:
        """The seed-style ``TRUSTEE_URL``: ``http://127.0.0.1:PORT/trustee`` (KBS under ``…/kbs/v0``)."""
        return str(self._need(self._trustee, "trustee_url").url)

    @property
    def oss_endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (path-style buckets, as oss2 uses for an IP endpoint)."""
        return str(self._need(self._oss, "oss_endpoint").endpoint)

    @property
    def kms_endpoint(self) -> str:
        """``127.0.0.1:PORT`` without a scheme, as the KMS SDK's ``Config(endpoint=…, protocol="http")`` wants it."""
        return str(self._need(self._kms, "kms_endpoint").endpoint)

    @property
    def admin_url(self) -> str:
        return str(self._need(self._admin, "admin_url").url)

    @property
    def credentials_path(self) -> Path:
        return self._state_dir / CREDENTIALS_FILE

    @property
    def recipe_path(self) -> Path:
        return self._state_dir / RECIPE_FILE

    @property
    def instance(self) -> Any:
        """The :class:`~cai_tui.labstack.instance.LabInstance` while the lab provides one, else None."""
        return self._instance

    @property
    def instance_info(self) -> dict[str, Any]:
        return dict(self._instance_info)

    @property
    def demo(self) -> DemoSeed:
        return self._need(self._demo, "the demo seed")

    @property
    def keys(self) -> LabKeys:
        return self._need(self._keys, "the credentials")

    @property
    def trustee_lab(self) -> TrusteeLab:
        return self._need(self._trustee, "the Trustee")

    @property
    def oss_lab(self) -> OssLab:
        return self._need(self._oss, "the OSS")

    @property
    def kms_lab(self) -> KmsLab:
        return self._need(self._kms, "the KMS")

    def ready_info(self) -> dict[str, Any]:
        """The ready line's document (``cai-tui lab serve`` prints it as one JSON line)."""
        return {
            "event": "ready",
            "state_dir": str(self._state_dir),
            "trustee_url": self.trustee_url,
            "oss_endpoint": self.oss_endpoint,
            "kms_endpoint": self.kms_endpoint,
            "admin_url": self.admin_url,
            "credentials": str(self.credentials_path),
            "recipe": str(self.recipe_path),
            "seed": self._seed,
            "instance": dict(self._instance_info),
        }

    def health(self) -> dict[str, Any]:
        """Each component up or down (listening and accepting a TCP connection), with its active faults."""
        active = self._faults.active()
        comps: dict[str, Any] = {}
        for name, server in (
            ("trustee", self._trustee),
            ("oss", self._oss),
            ("kms", self._kms),
            ("admin", self._admin),
        ):
            port = url = None
            alive = False
            if server is not None:
                if name == "trustee":
                    assert isinstance(server, TrusteeLab)
                    port, url, alive = server.port, server.url, server.listening
                elif name == "kms":
                    assert isinstance(server, KmsLab)
                    alive = server.running
                    port = server.port if alive else None
                    url = server.endpoint if alive else None
                elif name == "oss":
                    assert isinstance(server, OssLab)
                    alive = server.running
                    port, url = server.port, server.endpoint
                else:
                    assert isinstance(server, AdminHTTPServer)
                    port, url, alive = server.port, server.url, True
            up = bool(alive and port and _probe(port))
            comps[name] = {
                "up": up,
                "url": url,
                "port": port,
                "faults": sorted(f for f in active if FAULTS[f].component == name),
            }
        return {"status": "ok" if all(c["up"] for c in comps.values()) else "degraded", "components": comps}
