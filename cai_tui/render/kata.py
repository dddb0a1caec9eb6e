"""kata-virtcca artifacts (seed 002): the CNI network file, the vfio binding script, the ctr run line, vllm serve."""

from __future__ import annotations

import json

from ..recipe import KataRecipe
from .base import Prompter, Rendered, Renderer
from .shell import Raw, multiline, q, script


class CniConf(Renderer):
    kind = "cni-conf"
    title = "CNI bridge network /etc/cni/net.d/<name>.conf (KATA-4.3)"
    flow = "kata-virtcca"
    default_path = "/etc/cni/net.d/vllmnet.conf"
    mode = 0o644

    def render(self, recipe: KataRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        c = recipe.answers.cni
        conf = {
            "cniVersion": "0.4.0",
            "name": c.network_name,
            "type": "bridge",
            "bridge": c.bridge,
            "isDefaultGateway": True,
            "forceAddress": False,
            "ipMasq": True,
            "hairpinMode": True,
            "ipam": {"type": "host-local", "subnet": c.subnet},
        }
        text = json.dumps(conf, indent=4) + "\n"
        path = c.conf_dir.rstrip("/") + f"/{c.network_name}.conf"
        return Rendered(text=text, mode=self.mode, path=path)


_DISCOVER = """\
mapfile -t found < <(lspci -nn -D | grep -i nvidia | awk '{print $1}')
if [ "${#found[@]}" -ne 1 ]; then
    echo "expected exactly one NVIDIA PCI function, found ${#found[@]}: ${found[*]:-none}" >&2
    echo "set answers.gpu.bdf in the recipe (lspci -nn -D | grep -i nvidia)" >&2
    exit 1
fi
BDF=${found[0]}"""

_BODY = """\
DEV="/sys/bus/pci/devices/$BDF"
case "${1:-bind}" in
    bind)
        modprobe vfio-pci
        # a GPU still bound to another driver (nvidia, nouveau) must let go before vfio-pci can take it
        if [ -e "$DEV/driver" ]; then echo "$BDF" > "$DEV/driver/unbind"; fi
        echo vfio-pci > "$DEV/driver_override"
        echo "$BDF" > /sys/bus/pci/drivers_probe
        group=$(basename "$(readlink -e "$DEV/iommu_group")")
        ls -l /dev/vfio
        echo "export VFIO=/dev/vfio/$group"
        ;;
    undo)
        # the seed writes $DEV/preferred_driver, which sysfs does not have; the override lives in driver_override
        echo > "$DEV/driver_override"
        if [ -e "$DEV/driver" ]; then echo "$BDF" > "$DEV/driver/unbind"; fi
        echo "$BDF" > /sys/bus/pci/drivers_probe
        ;;
    *)
        echo "usage: $0 [bind|undo]" >&2
        exit 2
        ;;
esac"""


class GpuBindScript(Renderer):
    kind = "gpu-bind-script"
    title = "gpu.sh: bind the GPU to vfio-pci, and undo (KATA-3.1)"
    flow = "kata-virtcca"
    default_path = "~/gpu.sh"
    mode = 0o755

    def render(self, recipe: KataRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        bdf = recipe.answers.gpu.bdf
        pick = f"BDF={q(bdf)}" if bdf else _DISCOVER
        text = script(
            [pick, _BODY],
            header=[
                "KATA-3.1: bash gpu.sh (bind, prints VFIO=/dev/vfio/<group>) | bash gpu.sh undo (give the GPU back)",
            ],
        )
        return self.done(text)


def vfio_word(recipe: KataRecipe) -> Raw | str:
    group = recipe.answers.gpu.iommu_group
    return f"/dev/vfio/{group}" if group is not None else Raw('"$VFIO"')


class CtrRun(Renderer):
    kind = "ctr-run"
    title = "ctr run of the confidential container with the GPU (KATA-5.1)"
    flow = "kata-virtcca"
    default_path = "~/ctr-run.sh"
    mode = 0o755

    def render(self, recipe: KataRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        a = recipe.answers
        body = []
        if a.gpu.iommu_group is None:
            body.append(': "${VFIO:?set VFIO=/dev/vfio/<IOMMU group> first (gpu.sh prints it)}"')
        body.append(
            multiline(
                ["ctr", "--debug", "run"],
                ["--runtime", a.kata.runtime],
                ["--device", vfio_word(recipe)],
                ["-t"],
                [f"--with-ns=network:/var/run/netns/{a.cni.netns}"],
                [a.image.containerd_ref, a.container.name, a.container.shell],
            )
        )
        text = script(body, header=["KATA-5.1: start the confidential container; inside it, nvidia-smi shows the GPU."])
        return self.done(text)


class VllmServe(Renderer):
    kind = "vllm-serve"
    title = "vLLM serve command inside the confidential container (KATA-5.3)"
    flow = "kata-virtcca"
    default_path = "~/vllm-serve.sh"
    mode = 0o755

    def render(self, recipe: KataRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        s = recipe.answers.serve
        words: list[str | Raw] = [Raw("VLLM_USE_MODELSCOPE=True")] if s.use_modelscope else []
        words += ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", s.model, "--trust-remote-code"]
        cmd = multiline(
            words,
            ["--host", s.host, "--port", str(s.port)],
            ["--served-model-name", s.served_name],
            ["--gpu-memory-utilization", f"{s.gpu_memory_utilization:g}"],
        )
        text = script(
            [cmd],
            header=[
                "KATA-5.3: run inside the container (needs outbound network to fetch the model); then ask it with",
                f"  curl http://127.0.0.1:{s.port}/v1/chat/completions (model {json.dumps(s.served_name, ensure_ascii=False)})",
            ],
        )
        return self.done(text)


__all__ = ["CniConf", "CtrRun", "GpuBindScript", "VllmServe"]
