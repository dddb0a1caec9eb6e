"""The kata lab's fake sysfs: a writable tree laid out like ``/sys`` (and ``/dev/vfio``, ``/proc/cmdline``) with a small
emulator thread that reacts to writes the way the kernel's PCI driver core does.

Why an emulator: the doer (``cai-tui kata vfio apply``) runs as its own process and writes sysfs files; a real kernel
moves the device to another driver when it reads those writes. The write-only attributes (``drivers_probe``, each
driver's ``bind``/``unbind``/``new_id``/``remove_id``) are named pipes here: every write reaches the emulator in order
and none is lost (a regular file would be overwritten before a poller saw it). ``driver_override`` is a regular file
(it is read back); the emulator normalises it as the kernel shows it (``(null)`` when cleared) and journals a change
before it handles the next pipe write, so the journal keeps the writer's order.

What the emulator does, as ``drivers/base`` and ``drivers/pci/pci-driver.c`` do (Documentation/ABI/testing/sysfs-bus-pci):

* ``driver_override``: only the named driver may bind; ``echo > driver_override`` (empty) clears it; writing it binds
  nothing by itself.
* ``drivers_probe`` ``BDF``: a device that has a driver is left alone; otherwise the driver named by its override (if
  that driver is loaded — its directory exists), or with no override its native driver (the one whose ID table
  matches), probes it. No matching driver: nothing happens (the write still succeeds).
* ``drivers/X/bind`` ``BDF``: ``-ENODEV`` when X does not match (another override, not X's IDs), ``-EBUSY`` when the
  device is bound already; else X probes it. ``drivers/X/unbind`` ``BDF``: ``-ENODEV`` unless the device is on X.
* vfio-pci's probe fails with ``-EINVAL`` (error -22) for a device without an IOMMU group or a bridge (vfio-pci takes
  only normal header type 0 functions), logged as the kernel does: ``vfio-pci BDF: probe with driver vfio-pci failed
  with error -22``.
* ``/dev/vfio/N`` exists while at least one member of group N is bound to vfio-pci (vfio registers the group with the
  first device; whether the group is *viable* is a separate question QEMU asks), ``/dev/vfio/vfio`` while vfio is loaded.

Stand-ins: errors a real write would return (``-EBUSY``, ``-ENODEV``) are written to :attr:`FakeSysfs.log_path` (and
:attr:`FakeSysfs.log`) because a pipe cannot fail a write; device nodes are regular files; ``new_id``/``remove_id`` are
not emulated (a write is logged as an error). Reading a pipe blocks: compare trees with :meth:`FakeSysfs.snapshot`.

The devices of each variant, and where their values come from: :mod:`cai_tui.lab.kata.sysfs_devices`.
"""

from __future__ import annotations

import errno
import os
import re
import select
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sysfs_devices import (
    CONSUMER_AUDIO_BDF,
    CONSUMER_GPU_BDF,
    CONSUMER_GROUP,
    LAB_GPU_BDF,
    LAB_GPU_GROUP,
    NO_IOMMU_GPU_BDF,
    NONVIABLE_GPU_BDF,
    NONVIABLE_GROUP,
    NONVIABLE_NIC_BDF,
    VARIANTS,
    VFIO,
    VIRTCCA_CMDLINE,
    FakeDevice,
    variant_devices,
)

__all__ = [
    "CONSUMER_AUDIO_BDF",
    "CONSUMER_GPU_BDF",
    "CONSUMER_GROUP",
    "LAB_GPU_BDF",
    "LAB_GPU_GROUP",
    "NONVIABLE_GPU_BDF",
    "NONVIABLE_GROUP",
    "NONVIABLE_NIC_BDF",
    "NO_IOMMU_GPU_BDF",
    "VARIANTS",
    "FakeDevice",
    "FakeSysfs",
    "build_fake_sysfs",
]

WRITE_ONLY = ("bind", "unbind", "new_id", "remove_id")
_RANK = {"unbind": 0, "bind": 1, "drivers_probe": 2}
_BDF = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")


@dataclass
class _State:
    driver: str | None
    override: str | None = None


@dataclass
class FakeSysfs:
    """A built tree under ``root`` (``root/sys``, ``root/dev``, ``root/proc``) and its emulator (:meth:`start`)."""

    root: Path
    variant: str
    devices: dict[str, FakeDevice]
    iommu: bool
    vfio_loaded: bool
    journal: list[tuple[str, str]] = field(default_factory=list)  # (path under the root, data written) in order
    log: list[str] = field(default_factory=list)  # kernel-like messages, errors a write would have returned
    _state: dict[str, _State] = field(default_factory=dict)
    _fifos: dict[int, str] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _handled: int = 0

    # ------------------------------------------------------------------ layout
    @property
    def sys(self) -> Path:
        return self.root / "sys"

    @property
    def log_path(self) -> Path:
        return self.root / "fake-kernel.log"

    def dev_dir(self, bdf: str) -> Path:
        chain = [bdf]
        parent = self.devices[bdf].parent
        while parent is not None:
            chain.insert(0, parent)
            parent = self.devices[parent].parent
        return self.sys.joinpath("devices", "pci0000:00", *chain)

    def driver_dir(self, name: str) -> Path:
        return self.sys / "bus/pci/drivers" / name

    def driver_of(self, bdf: str) -> str | None:
        link = self.dev_dir(bdf) / "driver"
        return os.readlink(link).rsplit("/", 1)[-1] if link.is_symlink() else None

    def override_of(self, bdf: str) -> str:
        return (self.dev_dir(bdf) / "driver_override").read_text()

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        s = self.sys
        drivers = sorted(
            {d.native for d in self.devices.values() if d.native} | ({VFIO} if self.vfio_loaded else set())
        )
        for name in drivers:
            self._make_driver(name)
        _mkfifo(s / "bus/pci/drivers_probe")
        _write(s / "bus/pci/drivers_autoprobe", "1\n")
        (s / "kernel/iommu_groups").mkdir(parents=True)
        (s / "class/iommu").mkdir(parents=True)
        if self.iommu:
            (s / "class/iommu/smmu3.0x0000000148000000").mkdir()
        for bdf in sorted(self.devices, key=lambda b: len(self.dev_dir(b).parts)):
            self._make_device(self.devices[bdf])
        (self.root / "dev/vfio").mkdir(parents=True)
        if self.vfio_loaded:
            _write(self.root / "dev/vfio/vfio", "")  # stands in for the character device 10:196
            for mod in ("vfio", "vfio_iommu_type1", "vfio_pci", "vfio_pci_core"):
                (s / "module" / mod).mkdir(parents=True)
        cmdline = "BOOT_IMAGE=/vmlinuz-6.6.0-28.0.0.34.oe2403.aarch64 root=/dev/mapper/openeuler-root ro"
        _write(self.root / "proc/cmdline", cmdline + (f" {VIRTCCA_CMDLINE}\n" if self.iommu else "\n"))
        _write(self.root / "proc/sys/kernel/osrelease", "6.6.0-28.0.0.34.oe2403.aarch64\n")
        self._state = {b: _State(d.driver) for b, d in self.devices.items()}
        self._sync_vfio_nodes()

    def _make_driver(self, name: str) -> None:
        d = self.driver_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        for f in WRITE_ONLY:
            _mkfifo(d / f)

    def _make_device(self, d: FakeDevice) -> None:
        path = self.dev_dir(d.bdf)
        path.mkdir(parents=True)
        _write(path / "vendor", f"0x{d.vendor:04x}\n")
        _write(path / "device", f"0x{d.device:04x}\n")
        _write(path / "class", f"0x{d.class_code:06x}\n")
        _write(path / "subsystem_vendor", f"0x{d.subsystem[0]:04x}\n")
        _write(path / "subsystem_device", f"0x{d.subsystem[1]:04x}\n")
        _write(path / "numa_node", "-1\n")
        _write(path / "enable", "1\n")
        _write(path / "driver_override", "(null)\n")
        if d.class_code >> 16 == 0x03:
            _write(path / "boot_vga", "1\n" if d.boot_vga else "0\n")
        if d.netdev:
            _write(path / "net" / d.netdev[0] / "operstate", d.netdev[1] + "\n")
        for disk in d.block:
            (path / "nvme/nvme0" / disk).mkdir(parents=True)
        _symlink(self.sys / "bus/pci/devices" / d.bdf, path)
        if d.group is not None:
            group_dir = self.sys / "kernel/iommu_groups" / str(d.group)
            (group_dir / "devices").mkdir(parents=True, exist_ok=True)
            if not (group_dir / "type").exists():
                _write(group_dir / "type", "DMA\n")
            _symlink(group_dir / "devices" / d.bdf, path)
            _symlink(path / "iommu_group", group_dir)
        if d.driver:
            self._link_driver(d.bdf, d.driver)

    def _link_driver(self, bdf: str, name: str) -> None:
        path = self.dev_dir(bdf)
        _symlink(path / "driver", self.driver_dir(name))
        _symlink(self.driver_dir(name) / bdf, path)

    def _unlink_driver(self, bdf: str, name: str) -> None:
        (self.dev_dir(bdf) / "driver").unlink()
        (self.driver_dir(name) / bdf).unlink()

    # ------------------------------------------------------------------ emulator
    def start(self) -> FakeSysfs:
        """Start the emulator thread (idempotent)."""
        if self._thread is not None:
            return self
        self._stop.clear()
        for path in self._fifo_paths():
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)  # reader and writer: never EOF, writers never ENXIO
            self._fifos[fd] = str(path)
        self._thread = threading.Thread(target=self._loop, name="fake-sysfs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Handle what is pending, stop the thread and close the pipes."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(5)
        self._thread = None
        for fd in self._fifos:
            os.close(fd)
        self._fifos.clear()

    def __enter__(self) -> FakeSysfs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _fifo_paths(self) -> list[Path]:
        paths = [self.sys / "bus/pci/drivers_probe"]
        for d in sorted((self.sys / "bus/pci/drivers").iterdir()):
            paths += [d / f for f in WRITE_ONLY]
        return paths

    def _loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(list(self._fifos), [], [], 0.02)
            with self._lock:
                self._scan_overrides()
                batch = [(fd, self._drain(fd)) for fd in ready]
                # writes that arrived within one tick: handled in the order a script writes them (override first,
                # then unbind, bind, drivers_probe); a writer that waits for each effect (the doer) is never batched
                batch.sort(key=lambda item: _RANK.get(os.path.basename(self._fifos[item[0]]), 9))
                for fd, text in batch:
                    if text:
                        self._handle(self._fifos[fd], text)

    def _drain(self, fd: int) -> str:
        chunks = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks += chunk
        return chunks.decode("utf-8", "replace")

    def _rel(self, path: str | Path) -> str:
        return "/" + os.path.relpath(path, self.root)

    def _scan_overrides(self) -> None:
        """Journal and normalise ``driver_override`` writes (the kernel shows the stored name, or ``(null)``)."""
        for bdf, st in self._state.items():
            f = self.dev_dir(bdf) / "driver_override"
            raw = f.read_text()
            if raw == "":
                continue  # between a writer's truncate and its write (an empty write never reaches the kernel)
            shown = "(null)\n" if st.override is None else st.override + "\n"
            if raw == shown:
                continue
            value = raw.split("\n", 1)[0].strip()
            self.journal.append((f"/sys/bus/pci/devices/{bdf}/driver_override", raw))
            st.override = None if value in ("", "(null)") else value
            self._kmsg(f"{bdf}: driver_override = {st.override or '(null)'}")
            _write(f, "(null)\n" if st.override is None else st.override + "\n")

    def _handle(self, path: str, text: str) -> None:
        rel = self._rel(path)
        self.journal.append((rel, text))
        self._handled += 1
        bdfs = _BDF.findall(text)
        name = os.path.basename(path)
        if not bdfs or _BDF.sub("", text).strip():
            self._kmsg(f"write {text!r} > {rel}: -ENODEV (not a PCI address)", error=True)
            return
        for bdf in (b.lower() for b in bdfs):
            if bdf not in self.devices:
                self._kmsg(f"write {bdf} > {rel}: -ENODEV (no such device)", error=True)
            elif name == "drivers_probe":
                self._probe_any(bdf)
            elif name == "bind":
                self._bind(os.path.basename(os.path.dirname(path)), bdf, rel)
            elif name == "unbind":
                self._unbind(os.path.basename(os.path.dirname(path)), bdf, rel)
            else:
                self._kmsg(f"write {bdf} > {rel}: not emulated by the fake sysfs", error=True)
        self._sync_vfio_nodes()

    def _loaded(self, driver: str) -> bool:
        return self.driver_dir(driver).is_dir()

    def _matches(self, driver: str, bdf: str) -> bool:
        """pci_match_device: the override alone decides when set; else the driver's ID table (the native driver)."""
        st = self._state[bdf]
        if st.override is not None:
            return st.override == driver
        return self.devices[bdf].native == driver

    def _probe(self, driver: str, bdf: str) -> None:
        d = self.devices[bdf]
        if driver == VFIO and (d.group is None or d.is_bridge):
            self._kmsg(f"{VFIO} {bdf}: probe with driver {VFIO} failed with error -22", error=True)
            return
        self._link_driver(bdf, driver)
        self._state[bdf].driver = driver
        self._kmsg(f"{driver} {bdf}: bound")

    def _probe_any(self, bdf: str) -> None:
        st = self._state[bdf]
        if st.driver is not None:
            return  # bus_rescan_devices_helper: only a device without a driver is probed
        want = st.override if st.override is not None else self.devices[bdf].native
        if want is None or not self._loaded(want):
            self._kmsg(f"{bdf}: drivers_probe: no driver matches ({want or 'none'} not loaded)")
            return
        self._probe(want, bdf)

    def _bind(self, driver: str, bdf: str, rel: str) -> None:
        st = self._state[bdf]
        if not self._matches(driver, bdf):
            self._kmsg(f"write {bdf} > {rel}: -ENODEV ({driver} does not match {bdf})", error=True)
        elif st.driver is not None:
            self._kmsg(f"write {bdf} > {rel}: -EBUSY ({bdf} is bound to {st.driver})", error=True)
        else:
            self._probe(driver, bdf)

    def _unbind(self, driver: str, bdf: str, rel: str) -> None:
        st = self._state[bdf]
        if st.driver != driver:
            self._kmsg(f"write {bdf} > {rel}: -ENODEV ({bdf} is bound to {st.driver or 'no driver'})", error=True)
            return
        self._unlink_driver(bdf, driver)
        st.driver = None
        self._kmsg(f"{driver} {bdf}: unbound")

    def _sync_vfio_nodes(self) -> None:
        groups: dict[int, bool] = {}
        for bdf, d in self.devices.items():
            if d.group is not None:
                groups[d.group] = groups.get(d.group, False) or self._state[bdf].driver == VFIO
        for group, on in groups.items():
            node = self.root / "dev/vfio" / str(group)
            if on and not node.exists():
                _write(node, "")  # stands in for the character device vfio creates for the group
                self._kmsg(f"vfio: /dev/vfio/{group} created")
            elif not on and node.exists():
                node.unlink()
                self._kmsg(f"vfio: /dev/vfio/{group} removed")

    def _kmsg(self, text: str, *, error: bool = False) -> None:
        line = ("error: " if error else "") + text
        self.log.append(line)
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    # ------------------------------------------------------------------ for tests
    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every pipe is drained and handled (the emulator has caught up with the writers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = any(_pending(fd) for fd in self._fifos)
                if not pending:
                    self._scan_overrides()
                    return
            time.sleep(0.01)
        raise TimeoutError("the fake sysfs emulator did not catch up (is it started?)")

    def gpu_answers(self) -> dict[str, Any]:
        """``answers.gpu`` for a kata lab recipe on this tree: the sysroot, and the GPU and group of its variant."""
        gpus = {"lab": (LAB_GPU_BDF, LAB_GPU_GROUP), "no-vfio": (LAB_GPU_BDF, LAB_GPU_GROUP),
                "consumer": (CONSUMER_GPU_BDF, CONSUMER_GROUP), "non-viable": (NONVIABLE_GPU_BDF, NONVIABLE_GROUP),
                "no-iommu": (NO_IOMMU_GPU_BDF, None), "all": (LAB_GPU_BDF, LAB_GPU_GROUP)}  # fmt: skip
        bdf, group = gpus[self.variant]
        return {"sysroot": str(self.root), "bdf": bdf, "iommu_group": group}

    def errors(self) -> list[str]:
        return [line for line in self.log if line.startswith("error: ")]

    def snapshot(self) -> dict[str, Any]:
        """Every path under the root → ``link -> target``, a file's text, ``<fifo>`` or ``<dir>`` (pipes are not
        read: that would block); the emulator's log is left out. For before/after comparisons."""
        out: dict[str, Any] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in sorted(dirnames + filenames):
                p = os.path.join(dirpath, name)
                rel = self._rel(p)
                if rel == self._rel(self.log_path):
                    continue
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    out[rel] = "link -> " + os.readlink(p)
                elif stat.S_ISFIFO(st.st_mode):
                    out[rel] = "<fifo>"
                elif stat.S_ISDIR(st.st_mode):
                    out[rel] = "<dir>"
                else:
                    out[rel] = Path(p).read_text(errors="replace")
        return out


def _pending(fd: int) -> bool:
    r, _, _ = select.select([fd], [], [], 0)
    return bool(r)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _mkfifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path, 0o200)


def _symlink(link: Path, target: Path) -> None:
    """A relative link, as sysfs makes them (``../../../bus/pci/drivers/nvidia``)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, link.parent), link)


def build_fake_sysfs(root: Path, variant: str = "lab") -> FakeSysfs:
    """Build the tree of ``variant`` under ``root`` (which must be absent or empty); call ``start()`` before writing.

    ``lab``: the H200 :data:`LAB_GPU_BDF` (10de:2335, nvidia) in IOMMU group :data:`LAB_GPU_GROUP` with its root port
    (a group with a bridge), plus host devices (boot VGA, NVMe, NIC) in their own groups. ``consumer``: an AD102 GPU and
    its audio function (snd_hda_intel) in group 17. ``non-viable``: an H100 sharing group 40 with an i40e NIC whose link
    is up. ``no-iommu``: the captured H100 VM, no groups. ``no-vfio``: ``lab`` without the vfio-pci driver.
    ``all``: lab, consumer and non-viable together.
    """
    devices, iommu, vfio_loaded = variant_devices(variant)
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(errno.EEXIST, "the fake sysfs root must be empty", str(root))
    root.mkdir(parents=True, exist_ok=True)
    fake = FakeSysfs(root.resolve(), variant, {d.bdf: d for d in devices}, iommu, vfio_loaded)
    fake._build()
    return fake


def main(argv: list[str] | None = None) -> int:
    """``python -m cai_tui.lab.kata.sysfs ROOT [VARIANT]``: build the tree and run the emulator until Ctrl-C."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(f"usage: python -m cai_tui.lab.kata.sysfs ROOT [{'|'.join(VARIANTS)}]", file=sys.stderr)
        return 2
    fake = build_fake_sysfs(Path(args[0]), args[1] if len(args) > 1 else "lab")
    print(f"fake sysfs ({fake.variant}) under {fake.root}; emulator running, Ctrl-C stops it", flush=True)
    with fake:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
