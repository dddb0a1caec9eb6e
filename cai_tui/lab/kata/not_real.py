"""The one place that says which pieces of the kata lab are not the real thing, and why (banners and docs read it).

Real: qemu-img, e2fsck, resize2fs and the loop/fuse2fs mount of an ext4 image; Debian's CNI plugins (bridge,
host-local, loopback) run in network namespaces; containerd and ``ctr``; the kata configuration file (derived from
kata-containers' own templates).
"""

from __future__ import annotations

KATA_NOT_REAL: tuple[tuple[str, str], ...] = (
    (
        "kata runtime",
        "ctr run uses runc (io.containerd.runc.v2) where the host runs io.containerd.kata.v2: no virtCCA (Arm CCA) "
        "hardware here, so the container is not a confidential VM; everything else on the ctr line is the same",
    ),
    (
        "guest rootfs.img (lab)",
        "a 64 MiB ext4 image of this host's architecture (busybox-static as /bin/sh and the applets), made by "
        "cai_tui.lab.kata.rootfs_image, where kata's is an aarch64 openEuler rootfs: the chroot runs here without "
        "binfmt_misc; dnf --installroot is reported manual (no dnf, no openEuler repositories)",
    ),
    (
        "/bin/bash in the lab rootfs",
        "a two-line script that execs busybox sh (busybox has no bash applet; the hook's #!/bin/bash -x needs one)",
    ),
    (
        "nvidia-container-toolkit in the lab rootfs",
        "a script that echoes its arguments at /usr/bin/nvidia-container-toolkit (the hook calls it; the real one "
        "comes from NVIDIA's rpm repository through dnf)",
    ),
    (
        "NVIDIA .run installer (lab)",
        "a shell script named NVIDIA-Linux-aarch64-<version>.run that checks --kernel-source-path and writes "
        "/usr/lib/nvidia-lab/version in the chroot; it builds no kernel module (no guest kernel, no GPU here)",
    ),
    (
        "VFIO device on the ctr run line (lab)",
        "cai-tui kata container run leaves --device /dev/vfio/<group> off the line when answers.gpu.sysroot is set: "
        "runc starts a plain container, not a VM, and cannot take a VFIO group; the command says so when it runs",
    ),
    (
        "vLLM image (lab)",
        "cai_tui.lab.kata.vllm_image builds FROM the labstack image (python, cai_tui, a vllm shim serving the "
        "inference stand-in with a deterministic reply) instead of the seed's nvcr.io pytorch + vLLM build: no "
        "registry here; it loads a tiny model directory (/models/Qwen1.5-1.8B-Chat: config, tokenizer config, a "
        "valid 8-byte safetensors), runs on CPU (CAI_LAB_DEVICE=cpu) and binds the --host it is given inside the "
        "container's network namespace",
    ),
    (
        "nvidia-smi in the container (lab)",
        "a script that prints the real nvidia-smi outputs captured on an H100 VM (tests/fixtures/captures/"
        "h100-vm-2026-11-22, unmodified) for the same arguments, with their exit status; no GPU is passed in",
    ),
    (
        "sysfs and /dev/vfio for the vfio steps (lab)",
        "cai_tui.lab.kata.sysfs builds a tree laid out like /sys (answers.gpu.sysroot points at it) and runs an "
        "emulator thread that reacts to driver_override, unbind, bind and drivers_probe as the kernel's PCI driver "
        "core does; the write-only files are named pipes, errors a write would return (-EBUSY, -ENODEV) go to its "
        "log, /dev/vfio/<N> is a regular file; no device, driver or IOMMU is touched",
    ),
    (
        "docker buildx and the image build (lab)",
        "Debian's docker.io has no buildx and GitHub (its documented download) is out of reach: image install-buildx "
        "says so, and image build runs the classic builder (DOCKER_BUILDKIT=0) on the stand-in's Dockerfile, given as "
        "answers.image.dockerfile, instead of BuildKit on the seed's rendered Dockerfile (which needs RUN --mount); "
        "the rest — disk check, --build-arg/--target/--tag, docker save, the undo — is the same",
    ),
    (
        "kata configuration in effect (lab)",
        "cai_tui.lab.kata.kata_config renders kata 3.24.0's own configuration-qemu.toml.in (arm64 kata-deploy values, "
        "the virtCCA kernel_params) into the lab's folder and KATA_CONF_FILE names it; no kata runtime reads it "
        "(since kata 4.0 the shim would accept KATA_CONF_FILE only for one of its default paths)",
    ),
    (
        "cnitool (lab, tests of its branch only)",
        "cnitool cannot be built here (no Go toolchain, GitHub out of reach) and Debian ships none: the kata lab "
        "attaches by invoking Debian's CNI plugins directly as the CNI spec defines (what cni.attach does without "
        "cnitool); the test of the cnitool branch puts cai_tui.lab.kata.cni's stand-in (cnitool's command line, "
        "NETCONFPATH/CNI_PATH/CNI_IFNAME, container ID and result cache, the real plugins behind it) in bin_dir",
    ),
)


def describe() -> str:
    """One line per stand-in, for banners and docs."""
    return "\n".join(f"- {what}: {why}" for what, why in KATA_NOT_REAL)
