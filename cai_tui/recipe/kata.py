"""Answers of the ``kata-virtcca`` flow: openEuler kata-virtcca with GPU passthrough (seed 002, KATA-*)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Section
from .types import AbsPath, Bdf, Fraction, Port, PrivateCidr, Version


class HostAnswers(Section):
    """KATA-0: the Arm host."""

    arch: Literal["aarch64"] = Field("aarch64", description="virtCCA hosts are Arm (aarch64)")
    kernel_branch: str = Field("OLK-6.6", description="host kernel branch")
    docker_min_version: str = Field("19.03", description="docker must be newer than this")


class RootfsAnswers(Section):
    """KATA-1.1..1.7: the guest rootfs image."""

    image: AbsPath = Field("/root/rootfs.img", description="guest rootfs.img")
    mount_dir: AbsPath = Field("/home/mnt", description="ROOTFS_DIR where the image is mounted")
    grow_gib: int = Field(20, ge=1, le=1024, description="qemu-img resize rootfs.img +N G")
    kernel_source_dir: AbsPath = Field(
        "/root/kernel", description="guest kernel source tree copied to <rootfs>/home/kernel"
    )
    toolkit_repo_url: str = Field(
        "https://nvidia.github.io/libnvidia-container/stable/rpm/nvidia-container-toolkit.repo",
        description="yum repo of nvidia-container-toolkit",
    )
    packages: list[str] = Field(default_factory=lambda: ["pciutils", "tar", "gcc", "nvidia-container-toolkit"])


class DriverAnswers(Section):
    """KATA-1.5 / KATA-1.6: the NVIDIA driver and the OCI hook inside the guest."""

    version: Version = Field("550.127.08", description="NVIDIA driver version")
    installer: AbsPath | None = Field(None, description="NVIDIA-Linux-aarch64-<version>.run on the host")
    hook_path: AbsPath = Field(
        "/usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh", description="prestart hook inside the guest"
    )


class KataConfigAnswers(Section):
    """KATA-1.8: the kata configuration in effect."""

    config_path: AbsPath = Field("/etc/kata-containers/configuration.toml", description="configuration.toml to edit")
    guest_hook_path: AbsPath = Field("/usr/share/oci/hooks", description="guest_hook_path value")
    runtime: str = Field("io.containerd.kata.v2", description="containerd runtime name")


class ImageAnswers(Section):
    """KATA-2.x: the vLLM image."""

    buildx_version: Version = Field("v0.19.2", description="docker buildx release")
    build_dir: AbsPath = Field("/home/pass-through/vllm-build", description="vllm-build checkout")
    tag: str = Field("vllm-cvm:latest", pattern=r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?$", description="image tag")
    target: Literal["base", "build", "vllm-base", "vllm-openai"] = Field("vllm-base", description="Dockerfile target")
    max_jobs: int = Field(64, ge=1, le=1024, description="--build-arg max_jobs")
    nvcc_threads: int = Field(8, ge=1, le=256, description="--build-arg nvcc_threads")
    dockerfile: AbsPath | None = Field(
        None,
        description="a Dockerfile to build instead of the rendered one (context: build_dir); the kata lab's stand-in",
    )
    archive: AbsPath = Field("/home/pass-through/vllm.tar.gz", description="docker save output for ctr image import")
    containerd_ref: str = Field("docker.io/library/vllm-cvm:latest", description="the image as containerd names it")


class GpuAnswers(Section):
    """KATA-3.x: the GPU to pass through."""

    bdf: Bdf | None = Field(None, description="PCI address DDDD:BB:SS.F; found with lspci when empty")
    iommu_group: int | None = Field(None, ge=0, le=65535, description="IOMMU group number N (VFIO=/dev/vfio/N)")
    sysroot: AbsPath | None = Field(
        None,
        description="where /sys and /dev are read and written for the vfio steps; empty: this machine's own "
        "(the kata lab points it at its fake sysfs tree)",
    )


class CniAnswers(Section):
    """KATA-4.x: the container network."""

    plugins_version: Version = Field("v1.6.0", description="containernetworking/plugins release")
    network_name: str = Field("vllmnet", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="CNI network name")
    netns: str = Field("vllmnet", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="network namespace")
    bridge: str = Field("cni0", pattern=r"^[A-Za-z0-9_.-]{1,15}$", description="bridge device (≤ 15 characters)")
    subnet: PrivateCidr = Field("10.88.0.0/16", description="private subnet that must not clash with other networks")
    conf_dir: AbsPath = Field("/etc/cni/net.d")
    bin_dir: AbsPath = Field("/opt/cni/bin")


class ContainerAnswers(Section):
    """KATA-5.1 / KATA-5.4: the confidential container."""

    name: str = Field("arch", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="container ID given to ctr run")
    shell: str = Field("/bin/sh")
    address: AbsPath = Field("/run/containerd/containerd.sock", description="containerd's socket (ctr --address)")
    namespace: str = Field(
        "default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$", description="containerd namespace (ctr -n)"
    )


class ServeAnswers(Section):
    """KATA-5.3 / KATA-5.4: vLLM inside the guest."""

    model: str = Field("qwen/Qwen1.5-1.8B-Chat", min_length=1, description="model to serve")
    served_name: str = Field("Qwen1.5-1.8B-Chat", min_length=1, description="--served-model-name")
    host: str = Field("0.0.0.0", description="--host")
    port: Port = Field(8000, description="--port")
    gpu_memory_utilization: Fraction = Field(0.95, description="--gpu-memory-utilization")
    use_modelscope: bool = Field(True, description="VLLM_USE_MODELSCOPE=True")
    question: str = Field("什么是机密容器？", description="the test question")


class KataAnswers(Section):
    host: HostAnswers = Field(default_factory=HostAnswers)
    rootfs: RootfsAnswers = Field(default_factory=RootfsAnswers)
    driver: DriverAnswers = Field(default_factory=DriverAnswers)
    kata: KataConfigAnswers = Field(default_factory=KataConfigAnswers)
    image: ImageAnswers = Field(default_factory=ImageAnswers)
    gpu: GpuAnswers = Field(default_factory=GpuAnswers)
    cni: CniAnswers = Field(default_factory=CniAnswers)
    container: ContainerAnswers = Field(default_factory=ContainerAnswers)
    serve: ServeAnswers = Field(default_factory=ServeAnswers)

    @model_validator(mode="after")
    def _hook_under_guest_path(self) -> KataAnswers:
        hook_root = self.kata.guest_hook_path.rstrip("/") + "/"
        if not self.driver.hook_path.startswith(hook_root):
            raise ValueError(
                f"driver.hook_path must lie under kata.guest_hook_path ({hook_root}prestart/…), "
                "or kata never runs the hook and nvidia-smi is missing in the guest"
            )
        return self
