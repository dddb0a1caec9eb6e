"""The lab's demo seed: a tiny but real model directory, encrypted in the real gocryptfs format.

What the seed puts in the state directory and the lab services:

* ``demo-model/`` — a Qwen2-shaped toy model: ``config.json``, ``generation_config.json``, ``tokenizer.json`` (a
  byte-level BPE), ``tokenizer_config.json``, ``README.md`` and ``model.safetensors`` (~330 KB of float16 tensors
  behind a valid safetensors header). Its content is deterministic, so it can be checked byte for byte.
* ``demo-cipher/`` — that directory encrypted by the native gocryptfs writer with a fresh random password (the real
  ``gocryptfs`` mounts it);
* ``model-password`` (0600) — the password;
* ``demo-seed.json`` — what was seeded (format version, SHA-256 of the password and of every plaintext and cipher
  file), so a restart on the same state directory reuses an intact seed instead of paying for scrypt again.

The orchestrator uploads ``demo-cipher/`` to the lab OSS (bucket :data:`DEMO_BUCKET`, prefix :data:`DEMO_PREFIX`)
and stores the password as the KMS secret :data:`DEMO_SECRET_NAME`, which the lab Trustee serves as
:data:`DEMO_KEY_URI`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import secrets
import shutil
import struct
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("cai_tui.lab")

DEMO_BUCKET = "lab-models"
DEMO_PREFIX = "demo-gocryptfs/"
DEMO_SECRET_NAME = "model-decryption-key"
DEMO_KEY_URI = f"kbs:///default/aliyun/{DEMO_SECRET_NAME}"
DEMO_MODEL_DIR = "demo-model"
DEMO_CIPHER_DIR = "demo-cipher"
PASSWORD_FILE = "model-password"
SEED_RECORD = "demo-seed.json"
SEED_FORMAT = 1

# --- the toy model ---------------------------------------------------------------------------------------------------

VOCAB_SIZE = 320  # ≥ the tokenizer's 256 bytes + merges + 3 special tokens, padded as Qwen pads its vocabulary
HIDDEN = 64
INTERMEDIATE = 176
LAYERS = 3
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_MERGES = [
    ("Ġ", "t"), ("h", "e"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"), ("Ġt", "he"), ("r", "e"),
    ("Ġ", "s"), ("a", "t"), ("o", "r"), ("e", "n"), ("Ġ", "c"), ("i", "s"), ("Ġ", "o"), ("e", "s"),
    ("Ġ", "w"), ("a", "n"), ("in", "g"), ("Ġ", "m"), ("Ġ", "b"), ("e", "d"), ("Ġ", "f"), ("Ġ", "p"),
]  # fmt: skip
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table (what a ByteLevel pre-tokenizer uses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = list(printable)
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def _tokenizer() -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """(tokenizer.json, tokenizer_config.json, special token ids)."""
    table = _bytes_to_unicode()
    vocab: dict[str, int] = {table[b]: i for i, b in enumerate(sorted(table))}
    for left, right in _MERGES:
        vocab.setdefault(left + right, len(vocab))
    special = {tok: len(vocab) + i for i, tok in enumerate(SPECIAL_TOKENS)}
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": True}
        for t, i in special.items()
    ]  # fmt: skip
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b in _MERGES],
        },
    }
    tok_config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                     "special": True}
            for t, i in special.items()
        },
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 2048,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }  # fmt: skip
    return tokenizer, tok_config, special


def _tensor_shapes() -> list[tuple[str, tuple[int, ...]]]:
    shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (VOCAB_SIZE, HIDDEN))]
    kv = KV_HEADS * HEAD_DIM
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (HIDDEN,)),
            (p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.q_proj.bias", (HIDDEN,)),
            (p + "self_attn.k_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.k_proj.bias", (kv,)),
            (p + "self_attn.v_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.v_proj.bias", (kv,)),
            (p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
            (p + "post_attention_layernorm.weight", (HIDDEN,)),
            (p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)),
        ]
    shapes.append(("model.norm.weight", (HIDDEN,)))
    return sorted(shapes)  # safetensors writers order tensors by name


# Maps the high byte of a little-endian float16 so that every value is finite and small: the sign and the top two
# mantissa bits are kept, the exponent is forced into 8..14 (magnitudes between 2**-7 and 1).
_F16_HIGH = bytes((b & 0x83) | ((8 + ((b >> 2) & 0x1F) % 7) << 2) for b in range(256))
_F16_ONE = struct.pack("<e", 1.0)


def _tensor_bytes(name: str, shape: tuple[int, ...], rng: random.Random) -> bytes:
    count = 1
    for d in shape:
        count *= d
    if name.endswith("norm.weight"):
        return _F16_ONE * count  # RMSNorm weights start at 1
    raw = bytearray(rng.randbytes(2 * count))
    raw[1::2] = bytes(raw[1::2]).translate(_F16_HIGH)
    return bytes(raw)


def safetensors_bytes(tensors: Iterable[tuple[str, str, tuple[int, ...], bytes]], metadata: dict[str, str]) -> bytes:
    """A safetensors file: u64-LE header length, the JSON header (padded with spaces to 8 bytes), the data."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    chunks: list[bytes] = []
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def demo_model_files() -> dict[str, bytes]:
    """The demo model directory as ``{relative path: content}`` (deterministic)."""
    tokenizer, tok_config, special = _tokenizer()
    eos, im_end = special["<|endoftext|>"], special["<|im_end|>"]
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": eos,
        "eos_token_id": im_end,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": 2048,
        "max_window_layers": LAYERS,
        "model_type": "qwen2",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 2048,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "transformers_version": "4.43.1",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB_SIZE,
    }
    generation = {
        "bos_token_id": eos,
        "do_sample": True,
        "eos_token_id": [im_end, eos],
        "pad_token_id": eos,
        "repetition_penalty": 1.05,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.8,
        "transformers_version": "4.43.1",
    }
    rng = random.Random(20240731)
    tensors = [(name, "F16", shape, _tensor_bytes(name, shape, rng)) for name, shape in _tensor_shapes()]
    readme = (
        "# cai-tui lab demo model\n\n"
        "A Qwen2-shaped toy model (random float16 weights) that the cai-tui lab encrypts with gocryptfs, uploads to its\n"
        "loopback OSS and unlocks through its loopback KMS and Trustee. It is small on purpose and generates nonsense.\n"
    )

    def js(doc: dict[str, Any]) -> bytes:
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    return {
        "README.md": readme.encode("utf-8"),
        "config.json": js(config),
        "generation_config.json": js(generation),
        "model.safetensors": safetensors_bytes(tensors, {"format": "pt"}),
        "tokenizer.json": js(tokenizer),
        "tokenizer_config.json": js(tok_config),
    }


# --- the seed on disk ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSeed:
    model_dir: Path
    cipher_dir: Path
    password_file: Path
    password: str  # "" for the bare seed
    reused: bool  # True when an intact seed from an earlier start was kept
    bare: bool = False  # only the plaintext model: no cipherdir, no password file

    def cipher_files(self) -> list[tuple[str, Path]]:
        """``(object key, local path)`` of every file of the cipherdir, keys under :data:`DEMO_PREFIX`."""
        out = []
        for root, dirs, files in os.walk(self.cipher_dir):
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                out.append((DEMO_PREFIX + path.relative_to(self.cipher_dir).as_posix(), path))
        return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (no fsync: lab state is disposable)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _intact(state_dir: Path, files: dict[str, bytes]) -> str | None:
    """The password of an intact earlier seed in ``state_dir``, else None."""
    try:
        record = json.loads((state_dir / SEED_RECORD).read_text("utf-8"))
        password = (state_dir / PASSWORD_FILE).read_text("utf-8")
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != SEED_FORMAT or not password:
        return None
    if record.get("password_sha256") != _sha256(password.encode("utf-8")):
        return None
    expected = {rel: _sha256(data) for rel, data in files.items()}
    if record.get("files") != expected:
        return None
    model_dir = state_dir / DEMO_MODEL_DIR
    for rel, digest in expected.items():
        try:
            if _sha256((model_dir / rel).read_bytes()) != digest:
                return None
        except OSError:
            return None
    try:
        cipher = _cipher_digests(state_dir / DEMO_CIPHER_DIR)
    except OSError:
        return None
    if "gocryptfs.conf" not in cipher or record.get("cipher") != cipher:
        return None
    return password


def _cipher_digests(cipher_dir: Path) -> dict[str, str]:
    """SHA-256 of every file of the cipherdir, by relative path."""
    out = {}
    for root, _dirs, names in os.walk(cipher_dir, onerror=_raise):
        for name in names:
            path = Path(root) / name
            out[path.relative_to(cipher_dir).as_posix()] = _sha256(path.read_bytes())
    return out


def _raise(err: OSError) -> None:
    raise err


def _remove_dir(path: Path) -> None:
    if os.path.ismount(path):
        raise RuntimeError(f"{path} is a mount point; unmount it (fusermount3 -u {path}) before the lab re-seeds it")
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _write_model_dir(model_dir: Path, files: dict[str, bytes]) -> None:
    _remove_dir(model_dir)
    model_dir.mkdir(mode=0o755)
    for rel, data in files.items():
        (model_dir / rel).write_bytes(data)


def ensure_bare(state_dir: Path) -> DemoSeed:
    """The bare seed: the plaintext demo model only (rewritten unless intact); an earlier seed's cipherdir, password
    file and record are removed, so what encrypts and uploads is the replay's to do."""
    state_dir = Path(state_dir)
    files = demo_model_files()
    model_dir, cipher_dir = state_dir / DEMO_MODEL_DIR, state_dir / DEMO_CIPHER_DIR
    password_file = state_dir / PASSWORD_FILE
    intact = True
    for rel, data in files.items():
        try:
            intact = intact and (model_dir / rel).read_bytes() == data
        except OSError:
            intact = False
    if not intact or sorted(p.name for p in model_dir.iterdir()) != sorted(files):
        log.info("lab: writing the demo model (bare seed) in %s", state_dir)
        _write_model_dir(model_dir, files)
    (state_dir / SEED_RECORD).unlink(missing_ok=True)
    password_file.unlink(missing_ok=True)
    _remove_dir(cipher_dir)
    return DemoSeed(model_dir, cipher_dir, password_file, "", reused=intact, bare=True)


def ensure_demo(state_dir: Path) -> DemoSeed:
    """Keep an intact earlier seed, or write the demo model, encrypt it with a fresh password and record it."""
    from cai_tui.gocryptfs import encrypt_tree

    state_dir = Path(state_dir)
    files = demo_model_files()
    model_dir, cipher_dir = state_dir / DEMO_MODEL_DIR, state_dir / DEMO_CIPHER_DIR
    password_file = state_dir / PASSWORD_FILE
    password = _intact(state_dir, files)
    if password is not None:
        log.info("lab: keeping the demo seed in %s", state_dir)
        return DemoSeed(model_dir, cipher_dir, password_file, password, reused=True)

    log.info("lab: seeding the demo model in %s", state_dir)
    (state_dir / SEED_RECORD).unlink(missing_ok=True)
    _write_model_dir(model_dir, files)
    _remove_dir(cipher_dir)
    password = secrets.token_urlsafe(32)
    write_private(password_file, password.encode("utf-8"))
    encrypt_tree(model_dir, cipher_dir, password.encode("utf-8"), creator="cai-tui lab")
    record = {
        "format": SEED_FORMAT,
        "password_sha256": _sha256(password.encode("utf-8")),
        "files": {rel: _sha256(data) for rel, data in files.items()},
        "cipher": _cipher_digests(cipher_dir),
    }
    write_private(state_dir / SEED_RECORD, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return DemoSeed(model_dir, cipher_dir, password_file, password, reused=False)
