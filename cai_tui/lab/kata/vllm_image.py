"""The kata lab's stand-in for the seed's vLLM image (KATA-2): a build context whose Dockerfile is FROM the labstack image.

No registry is reachable here, so the seed's ``nvcr.io/nvidia/pytorch`` base cannot be pulled. The labstack image
(:mod:`cai_tui.labstack.image`: python, cai_tui and a ``vllm`` shim whose OpenAI server is the inference stand-in)
is built or reused, and this context adds what the KATA-5 steps use inside the container:

* ``/usr/bin/nvidia-smi``: prints what the real nvidia-smi printed on an H100 (the unmodified captures in
  tests/fixtures/captures/h100-vm-2026-11-22), for the same arguments, with the same exit status; any other
  arguments get nvidia-smi's own "Invalid combination" message;
* a tiny model directory :data:`LAB_MODEL_DIR` (config, tokenizer config, a valid safetensors header) that the
  stand-in loads as vLLM would;
* the shim's ``api_server`` binding the ``--host`` it is given (the labstack one binds 127.0.0.1 only): inside the
  container that is the container's own network namespace, which the lab creates;
* ``CAI_LAB_DEVICE=cpu``: there is no GPU in the container (the stand-in otherwise fails as vLLM does without one).

Each of these is listed in :mod:`cai_tui.lab.kata.not_real`.
"""

from __future__ import annotations

import json
import os
import shlex
import struct
import sys
from pathlib import Path
from typing import Any

from ...events import EventSink

LAB_MODEL_DIR = "/models/Qwen1.5-1.8B-Chat"
LAB_SERVED_NAME = "Qwen1.5-1.8B-Chat"
LAB_TAG = "cai-tui-kata-lab/vllm-cvm:latest"
CAPTURE_NAME = "h100-vm-2026-11-22"
CAPTURE_DIR = Path(__file__).resolve().parents[3] / "tests/fixtures/captures" / CAPTURE_NAME
IN_IMAGE_CAPTURES = f"/usr/share/cai-tui-lab/nvidia-smi/{CAPTURE_NAME}"
LABEL = "cai-tui.kata-lab.vllm-stand-in"

API_SERVER = '''\
"""cai-tui kata lab image only: vLLM's OpenAI server entry point, served by the labstack inference stand-in, bound
to the --host it is given (inside the container's network namespace) instead of the labstack's 127.0.0.1."""

import sys


def main() -> int:
    from cai_tui.labstack.services import inference

    args = inference.parse_args(sys.argv[1:])
    if args.host:
        inference.LOOPBACK = args.host
    return int(inference.main(sys.argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
'''

MODEL_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "max_position_embeddings": 32768,
    "torch_dtype": "bfloat16",
}
TOKENIZER_CONFIG = {"tokenizer_class": "Qwen2Tokenizer", "model_max_length": 32768, "eos_token": "<|endoftext|>"}


def _safetensors() -> bytes:
    """A valid safetensors file: one 1×4 bfloat16 tensor of zeros."""
    header = json.dumps(
        {"lm_head.weight": {"dtype": "BF16", "shape": [1, 4], "data_offsets": [0, 8]}, "__metadata__": {"format": "pt"}}
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\0" * 8


def _captures() -> dict[str, tuple[str, int]]:
    """nvidia-smi arguments → (capture file, exit status), from each capture's ``# $ nvidia-smi …`` line."""
    if not CAPTURE_DIR.is_dir():
        raise FileNotFoundError(
            f"{CAPTURE_DIR}: the real nvidia-smi captures are missing (run from a cai-tui checkout)"
        )
    out: dict[str, tuple[str, int]] = {}
    for f in sorted(CAPTURE_DIR.glob("nvidia-smi*.txt")):
        lines = f.read_text().splitlines()
        if not lines or not lines[0].startswith("# $ nvidia-smi"):
            continue
        args = lines[0].removeprefix("# $ nvidia-smi").strip()
        rc = next((int(ln.removeprefix("# rc=")) for ln in reversed(lines) if ln.startswith("# rc=")), 0)
        out.setdefault(args, (f.name, rc))
    return out


def nvidia_smi_script(captures: dict[str, tuple[str, int]]) -> str:
    cases = []
    for args, (name, rc) in sorted(captures.items()):
        cases.append(f'  {shlex.quote(args)}) cat "$D/{name}"; exit {rc} ;;')
    return "\n".join(
        [
            "#!/bin/sh",
            "# cai-tui kata lab: stands in for the guest driver's nvidia-smi (no GPU here). It prints what the real",
            f"# nvidia-smi printed on an H100 ({CAPTURE_NAME}, unmodified), for the same arguments.",
            f"D={IN_IMAGE_CAPTURES}",
            'case "$*" in',
            *cases,
            "  *) echo \"Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\" >&2; exit 2 ;;",
            "esac",
            "",
        ]
    )


def _capture_body(path: Path) -> str:
    lines = path.read_text().splitlines(keepends=True)
    return "".join(ln for ln in lines if not ln.startswith(("# $ ", "# rc=")))


def _write(root: Path, dest: str, data: str | bytes, mode: int = 0o644) -> None:
    p = root / dest.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    p.write_bytes(data)
    p.chmod(mode)


def write_nvidia_smi_stand_in(rootfs: Path) -> Path:
    """``rootfs/usr/bin/nvidia-smi`` and the captures it prints; returns the script's path."""
    caps = _captures()
    for name, _rc in caps.values():
        _write(rootfs, f"{IN_IMAGE_CAPTURES}/{name}", _capture_body(CAPTURE_DIR / name))
    _write(rootfs, "/usr/bin/nvidia-smi", nvidia_smi_script(caps), 0o755)
    return rootfs / "usr/bin/nvidia-smi"


def dockerfile(base: str, target: str = "vllm-base") -> str:
    """FROM the labstack image, as one stage named like the seed's ``--target`` (vllm-base)."""
    return "\n".join(
        [
            "# cai-tui kata lab: stand-in for the seed's vllm-cvm image (no registry here; see cai_tui/lab/kata/not_real.py)",
            f"FROM {base} AS {target}",
            "COPY rootfs/ /",
            "ENV CAI_LAB_DEVICE=cpu",
            f'LABEL {LABEL}="1"',
            'CMD ["/bin/sh"]',
            "",
        ]
    )


def write_vllm_build_context(
    dir: str | os.PathLike[str],
    *,
    base: str | None = None,
    target: str = "vllm-base",
    on_event: EventSink | None = None,
) -> Path:
    """Write the stand-in's build context into ``dir``; returns its Dockerfile. ``base``: the labstack image tag
    (default: built or reused now with :func:`cai_tui.labstack.image.build_image`)."""
    if base is None:
        from ...labstack.image import build_image

        base = build_image(on_event=on_event)
    root = Path(dir)
    rootfs = root / "rootfs"
    rootfs.mkdir(parents=True, exist_ok=True)
    write_nvidia_smi_stand_in(rootfs)
    _write(rootfs, f"{LAB_MODEL_DIR}/config.json", json.dumps(MODEL_CONFIG, indent=2) + "\n")
    _write(rootfs, f"{LAB_MODEL_DIR}/tokenizer_config.json", json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")
    _write(rootfs, f"{LAB_MODEL_DIR}/model.safetensors", _safetensors())
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    _write(rootfs, f"/usr/local/lib/python{ver}/dist-packages/vllm/entrypoints/openai/api_server.py", API_SERVER)
    path = root / "Dockerfile"
    path.write_text(dockerfile(base, target))
    return path


def containerd_ref(tag: str) -> str:
    """The name ``ctr image import`` gives a ``docker save``d tag (docker's normalization): ``vllm-cvm:latest`` →
    ``docker.io/library/vllm-cvm:latest``, ``a/b:t`` → ``docker.io/a/b:t``, ``registry.x/b:t`` unchanged."""
    first, _, rest = tag.partition("/")
    if not rest:
        return f"docker.io/library/{tag}"
    if "." in first or ":" in first or first == "localhost":
        return tag
    return f"docker.io/{tag}"


def lab_image_answers(
    directory: str | os.PathLike[str],
    *,
    tag: str = LAB_TAG,
    base: str | None = None,
    on_event: EventSink | None = None,
) -> dict[str, Any]:
    """The recipe answers of KATA-2 and KATA-5.3 for the lab: the stand-in's context written under ``directory``
    (``vllm-build/``), built by ``cai-tui kata image build`` as image.dockerfile, saved to ``directory/vllm.tar.gz``
    (a plain tar, as docker save writes it), imported as ``docker.io/<tag>``; the model directory inside it."""
    root = Path(directory)
    context = root / "vllm-build"
    path = write_vllm_build_context(context, base=base, on_event=on_event)
    ref = containerd_ref(tag)
    return {
        "image": {
            "build_dir": str(context),
            "dockerfile": str(path),
            "tag": tag,
            "target": "vllm-base",
            "archive": str(root / "vllm.tar.gz"),
            "containerd_ref": ref,
        },
        "serve": {"model": LAB_MODEL_DIR, "served_name": LAB_SERVED_NAME, "host": "0.0.0.0", "port": 8000},
    }


__all__ = [
    "LAB_MODEL_DIR",
    "LAB_SERVED_NAME",
    "LAB_TAG",
    "containerd_ref",
    "lab_image_answers",
    "nvidia_smi_script",
    "write_nvidia_smi_stand_in",
    "write_vllm_build_context",
]
