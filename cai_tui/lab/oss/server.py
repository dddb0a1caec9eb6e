"""The loopback OSS the lab runs: ``OssLab(state_dir, credentials, faults).start()`` → ``endpoint``.

Path-style addressing only (``http://127.0.0.1:PORT/<bucket>/<key>``), which is what oss2 uses for an IP endpoint.
Objects live under ``<state_dir>/oss`` (see :mod:`.store`); the server never touches anything outside it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ..faults import FaultSwitches
from .credentials import DEFAULT_UID, OssCredentials
from .service import OssService, valid_bucket_name
from .store import Store
from .wire import OssHTTPServer

SKEW_FAULT_SECONDS = 20 * 60


class OssLab:
    def __init__(
        self,
        state_dir: Path,
        credentials: OssCredentials,
        faults: FaultSwitches,
        port: int = 0,
        region: str = "cn-lab",
    ) -> None:
        self.state_dir = Path(state_dir)
        self.root = self.state_dir / "oss"
        self.credentials = credentials
        self.faults = faults
        self.region = region
        self._port = port
        self.store = Store(self.root)
        self.stopping = threading.Event()
        self.service = OssService(self.store, credentials, faults, region, self.now, self.stopping)
        self._server: OssHTTPServer | None = None
        self._lock = threading.Lock()

    # --- the server's clock (the oss-skew fault moves it 20 minutes ahead) ------------------------------------------

    def now(self) -> float:
        skew = SKEW_FAULT_SECONDS if self.faults.is_on("oss-skew") else 0
        return time.time() + skew

    # --- lifecycle --------------------------------------------------------------------------------------------------

    def create_bucket(self, name: str, owner_uid: str = DEFAULT_UID) -> None:
        """Create a bucket owned by ``owner_uid`` (no-op when it exists with that owner)."""
        if not valid_bucket_name(name):
            raise ValueError(f"invalid OSS bucket name {name!r}: 3-63 of [a-z0-9-], not starting or ending with '-'")
        self.store.create_bucket(name, owner_uid)

    def start(self) -> OssLab:
        with self._lock:
            if self._server is not None:
                return self
            self.stopping.clear()
            server = OssHTTPServer(self, self._port)
            self._port = server.port  # a restart keeps the same endpoint
            server.start()
            self._server = server
        return self

    def stop(self) -> None:
        """Stop listening, end stalled answers and hang up on open connections; idempotent."""
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            self.stopping.set()
            server.stop()

    def close(self) -> None:
        """Stop and release the index (the lab object is not usable afterwards)."""
        self.stop()
        self.store.close()

    def __enter__(self) -> OssLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The listening port; known before start() only when one was given (or after a first start)."""
        if self._server is not None:
            return self._server.port
        if self._port:
            return self._port
        raise RuntimeError("the lab OSS has no port yet; call start() first")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- observability (tests, the lab's status pane) ---------------------------------------------------------------

    @property
    def op_counts(self) -> dict[str, int]:
        """How many times each operation succeeded (e.g. ``{"UploadPart": 3}``)."""
        with self.service._counts_lock:
            return dict(self.service.op_counts)

    @property
    def stalled_answers(self) -> int:
        """Answers currently held back by the oss-stall-body fault."""
        return self.service.stalled
