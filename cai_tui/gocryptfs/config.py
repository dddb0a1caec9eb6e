"""``gocryptfs.conf``: create, load, validate, and unlock the master key with a password.

Layout, as gocryptfs writes it (Go's ``json.MarshalIndent`` with a tab, then a newline; mode 0400)::

    {
    <TAB>"Creator": "…",
    <TAB>"EncryptedKey": "<std base64 of nonce(16) ‖ AES-GCM(master key) ‖ tag>",
    <TAB>"ScryptObject": {"Salt": "<std base64>", "N": 65536, "R": 8, "P": 1, "KeyLen": 32},
    <TAB>"Version": 2,
    <TAB>"FeatureFlags": ["HKDF", "GCMIV128", "DirIV", "EMENames", "LongNames", "Raw64"]
    }

(optional ``FIDO2`` and ``LongNameMax`` follow ``FeatureFlags``). The key-wrapping key is HKDF-SHA256 of the scrypt
output with info ``"AES-GCM file content encryption"``; the AAD is the 8-byte block number 0.

Loading enforces gocryptfs' rules: format version 2, scrypt minimums (logN >= 10, R >= 8, P >= 1, salt >= 32 bytes,
KeyLen >= 32), only known feature flags, and consistent flag combinations. Of the valid configurations, this engine
reads what gocryptfs >= 1.3 creates (the default, ``-plaintextnames``, ``-deterministic-names``, ``-longnamemax``),
except AES-SIV, XChaCha20-Poly1305 and FIDO2 (:class:`UnsupportedConfig`); it writes only the default one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import InsecureConfig, NotACipherdir, UnsupportedConfig, WrongPassword
from .keys import KEY_LEN, Keys, key_wrapping_key
from .names import CONF_NAME, NAME_MAX

FORMAT_VERSION = 2
DEFAULT_LOGN = 16
SCRYPT_R = 8
SCRYPT_P = 1
SALT_LEN = 32
MIN_LOGN = 10
MAX_LOGN = 28  # the largest value gocryptfs -scryptn accepts
MIN_R = 8
MIN_P = 1
MIN_SALT_LEN = 32
MIN_KEY_LEN = 32

FLAG_PLAINTEXT_NAMES = "PlaintextNames"
FLAG_DIRIV = "DirIV"
FLAG_EME_NAMES = "EMENames"
FLAG_GCMIV128 = "GCMIV128"
FLAG_LONG_NAMES = "LongNames"
FLAG_LONG_NAME_MAX = "LongNameMax"
FLAG_AESSIV = "AESSIV"
FLAG_RAW64 = "Raw64"
FLAG_HKDF = "HKDF"
FLAG_FIDO2 = "FIDO2"
FLAG_XCHACHA = "XChaCha20Poly1305"

KNOWN_FLAGS = frozenset(
    {
        FLAG_PLAINTEXT_NAMES,
        FLAG_DIRIV,
        FLAG_EME_NAMES,
        FLAG_GCMIV128,
        FLAG_LONG_NAMES,
        FLAG_LONG_NAME_MAX,
        FLAG_AESSIV,
        FLAG_RAW64,
        FLAG_HKDF,
        FLAG_FIDO2,
        FLAG_XCHACHA,
    }
)
# What `gocryptfs -init` sets by default, in its order.
DEFAULT_FLAGS: tuple[str, ...] = (FLAG_HKDF, FLAG_GCMIV128, FLAG_DIRIV, FLAG_EME_NAMES, FLAG_LONG_NAMES, FLAG_RAW64)
_UNSUPPORTED_FLAGS = {
    FLAG_AESSIV: "AES-SIV content encryption",
    FLAG_XCHACHA: "XChaCha20-Poly1305 content encryption",
    FLAG_FIDO2: "a FIDO2-protected master key",
}


def _default_creator() -> str:
    from cai_tui import __version__

    return f"cai-tui {__version__}"


def _as_password(password: bytes | str) -> bytes:
    raw = password.encode("utf-8") if isinstance(password, str) else bytes(password)
    if not raw:
        raise ValueError("the password is empty (gocryptfs refuses empty passwords)")
    return raw


@dataclass(frozen=True)
class ScryptParams:
    salt: bytes = field(repr=False)
    n: int = 1 << DEFAULT_LOGN
    r: int = SCRYPT_R
    p: int = SCRYPT_P
    key_len: int = KEY_LEN

    def validate(self) -> None:
        """gocryptfs' minimums (:class:`InsecureConfig`) and what scrypt itself needs (:class:`UnsupportedConfig`)."""
        if self.n < 1 << MIN_LOGN:
            raise InsecureConfig(f"scrypt N={self.n} is below the minimum {1 << MIN_LOGN} (logN {MIN_LOGN})")
        if self.r < MIN_R:
            raise InsecureConfig(f"scrypt R={self.r} is below the minimum {MIN_R}")
        if self.p < MIN_P:
            raise InsecureConfig(f"scrypt P={self.p} is below the minimum {MIN_P}")
        if len(self.salt) < MIN_SALT_LEN:
            raise InsecureConfig(f"scrypt salt is {len(self.salt)} bytes, below the minimum {MIN_SALT_LEN}")
        if self.key_len < MIN_KEY_LEN:
            raise InsecureConfig(f"scrypt KeyLen={self.key_len} is below the minimum {MIN_KEY_LEN}")
        if self.n & (self.n - 1):
            raise UnsupportedConfig(f"scrypt N={self.n} is not a power of two")
        if self.n > 1 << MAX_LOGN or self.r * self.p >= 1 << 30 or self.key_len > 1024:
            raise UnsupportedConfig(f"scrypt parameters N={self.n} R={self.r} P={self.p} are too large")

    @property
    def logn(self) -> int:
        return self.n.bit_length() - 1

    def derive(self, password: bytes) -> bytes:
        self.validate()
        # OpenSSL needs 128*r*(N+2) bytes for V plus 128*r*p for B; add slack.
        maxmem = 128 * self.r * (self.n + 2) + 128 * self.r * self.p + (16 << 20)
        return hashlib.scrypt(password, salt=self.salt, n=self.n, r=self.r, p=self.p, maxmem=maxmem, dklen=self.key_len)


@dataclass(frozen=True)
class GocryptfsConfig:
    """The parsed contents of ``gocryptfs.conf`` (no secrets: the master key stays wrapped)."""

    creator: str
    encrypted_key: bytes = field(repr=False)
    scrypt: ScryptParams
    version: int = FORMAT_VERSION
    feature_flags: tuple[str, ...] = DEFAULT_FLAGS
    fido2: dict[str, Any] | None = None
    long_name_max: int = 0

    # ------------------------------------------------------------------ flags
    def has(self, flag: str) -> bool:
        return flag in self.feature_flags

    @property
    def plaintext_names(self) -> bool:
        return self.has(FLAG_PLAINTEXT_NAMES)

    @property
    def dir_iv(self) -> bool:
        return self.has(FLAG_DIRIV)

    @property
    def raw64(self) -> bool:
        return self.has(FLAG_RAW64)

    @property
    def effective_long_name_max(self) -> int | None:
        """Encoded names longer than this are hashed; ``None`` when long names are off."""
        if not self.has(FLAG_LONG_NAMES):
            return None
        return self.long_name_max or NAME_MAX

    @property
    def is_default_format(self) -> bool:
        return set(self.feature_flags) == set(DEFAULT_FLAGS) and self.long_name_max == 0

    def validate(self) -> None:
        """gocryptfs' ``Validate`` plus what this engine supports. Raises :class:`UnsupportedConfig` (or
        :class:`InsecureConfig`)."""
        if self.version != FORMAT_VERSION:
            raise UnsupportedConfig(f"on-disk format version {self.version} is not supported (only {FORMAT_VERSION})")
        self.scrypt.validate()
        for flag in self.feature_flags:
            if flag not in KNOWN_FLAGS:
                raise UnsupportedConfig(f"unknown feature flag {flag!r}")
        has = self.has
        if has(FLAG_XCHACHA) and has(FLAG_AESSIV):
            raise UnsupportedConfig("XChaCha20Poly1305 and AESSIV feature flags conflict")
        if has(FLAG_AESSIV) and not has(FLAG_GCMIV128):
            raise UnsupportedConfig("AESSIV requires the GCMIV128 feature flag")
        if has(FLAG_XCHACHA) and (has(FLAG_GCMIV128) or not has(FLAG_HKDF)):
            raise UnsupportedConfig("XChaCha20Poly1305 conflicts with GCMIV128 and requires HKDF")
        if not has(FLAG_XCHACHA) and not has(FLAG_AESSIV) and not has(FLAG_GCMIV128):
            raise UnsupportedConfig("AES-GCM requires the GCMIV128 feature flag")
        if has(FLAG_PLAINTEXT_NAMES):
            for other in (FLAG_EME_NAMES, FLAG_DIRIV, FLAG_LONG_NAMES, FLAG_RAW64, FLAG_LONG_NAME_MAX):
                if has(other):
                    raise UnsupportedConfig(f"PlaintextNames conflicts with the {other} feature flag")
        elif not has(FLAG_EME_NAMES):
            raise UnsupportedConfig("file names without EMENames (gocryptfs < 1.0) are not supported")
        if self.long_name_max and not has(FLAG_LONG_NAME_MAX):
            raise UnsupportedConfig(f"LongNameMax={self.long_name_max} without the LongNameMax feature flag")
        if not self.long_name_max and has(FLAG_LONG_NAME_MAX):
            raise UnsupportedConfig("LongNameMax feature flag without a LongNameMax value")
        if not 0 <= self.long_name_max <= 255:
            raise UnsupportedConfig(f"LongNameMax={self.long_name_max} is out of range")
        for flag, what in _UNSUPPORTED_FLAGS.items():
            if has(flag):
                raise UnsupportedConfig(f"feature flag {flag!r} ({what}) is not supported by this engine")
        if not has(FLAG_HKDF):
            raise UnsupportedConfig("file systems without the HKDF feature flag (gocryptfs < 1.3) are not supported")
        if not has(FLAG_PLAINTEXT_NAMES) and not (has(FLAG_RAW64) and has(FLAG_LONG_NAMES)):
            raise UnsupportedConfig("file names without Raw64 and LongNames (gocryptfs < 1.3) are not supported")
        if len(self.encrypted_key) != 64:
            raise UnsupportedConfig(f"EncryptedKey is {len(self.encrypted_key)} bytes, expected 64")

    # ------------------------------------------------------------------ keys
    def decrypt_master_key(self, password: bytes | str) -> bytes:
        """The 32-byte master key; :class:`WrongPassword` if ``password`` does not unlock it."""
        kek = key_wrapping_key(self.scrypt.derive(_as_password(password)))
        blob = self.encrypted_key
        try:
            key = AESGCM(kek).decrypt(blob[:16], blob[16:], (0).to_bytes(8, "big"))
        except InvalidTag:
            raise WrongPassword("password incorrect") from None
        if len(key) != KEY_LEN:
            raise UnsupportedConfig(f"master key is {len(key)} bytes, expected {KEY_LEN}")
        return key

    def keys(self, master_key: bytes) -> Keys:
        return Keys.from_master_key(master_key)

    def check_password(self, password: bytes | str) -> bool:
        try:
            self.decrypt_master_key(password)
        except WrongPassword:
            return False
        return True

    @classmethod
    def create(
        cls,
        password: bytes | str,
        *,
        master_key: bytes | None = None,
        scrypt_logn: int = DEFAULT_LOGN,
        creator: str | None = None,
    ) -> tuple[GocryptfsConfig, bytes]:
        """A new default-format config and its master key (random unless given).

        ``scrypt_logn`` exists for fast unit tests (gocryptfs' ``-scryptn``); keep the default 16 for real data.
        Values below 10 are refused, as gocryptfs would refuse to load them.
        """
        if master_key is None:
            master_key = os.urandom(KEY_LEN)
        if len(master_key) != KEY_LEN:
            raise ValueError(f"master key must be {KEY_LEN} bytes")
        if not MIN_LOGN <= scrypt_logn <= MAX_LOGN:
            raise ValueError(f"scrypt logN must be in {MIN_LOGN}..{MAX_LOGN}, not {scrypt_logn}")
        scrypt = ScryptParams(salt=os.urandom(SALT_LEN), n=1 << scrypt_logn)
        kek = key_wrapping_key(scrypt.derive(_as_password(password)))
        nonce = os.urandom(16)
        wrapped = nonce + AESGCM(kek).encrypt(nonce, bytes(master_key), (0).to_bytes(8, "big"))
        config = cls(
            creator=creator if creator is not None else _default_creator(),
            encrypted_key=wrapped,
            scrypt=scrypt,
        )
        config.validate()
        return config, bytes(master_key)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        """The file text, byte for byte as gocryptfs writes it."""
        obj: dict[str, Any] = {
            "Creator": self.creator,
            "EncryptedKey": base64.b64encode(self.encrypted_key).decode("ascii"),
            "ScryptObject": {
                "Salt": base64.b64encode(self.scrypt.salt).decode("ascii"),
                "N": self.scrypt.n,
                "R": self.scrypt.r,
                "P": self.scrypt.p,
                "KeyLen": self.scrypt.key_len,
            },
            "Version": self.version,
            "FeatureFlags": list(self.feature_flags),
        }
        if self.fido2 is not None:
            obj["FIDO2"] = self.fido2
        if self.long_name_max:
            obj["LongNameMax"] = self.long_name_max
        text = json.dumps(obj, indent="\t", ensure_ascii=False)
        # Go escapes these inside strings (the keys are plain ASCII, so replacing everywhere is safe).
        for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
            text = text.replace(char, escaped)
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return text + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = CONF_NAME) -> GocryptfsConfig:
        """Parse and validate. Malformed text raises :class:`NotACipherdir`; valid but unusable settings raise
        :class:`UnsupportedConfig`."""

        def bad(reason: str) -> NotACipherdir:
            return NotACipherdir(f"{source}: corrupt config: {reason}")

        try:
            obj = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad(f"not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise bad("not a JSON object")
        # Go's encoding/json matches field names case-insensitively and ignores unknown fields.
        fields = {str(k).lower(): v for k, v in obj.items()}

        def get(mapping: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
            if name.lower() not in mapping or mapping[name.lower()] is None:
                if default is ...:
                    raise bad(f"missing {name}")
                return default
            value = mapping[name.lower()]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise bad(f"{name} has the wrong type")
            return value

        def b64(name: str, value: str) -> bytes:
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise bad(f"{name} is not base64") from None

        scrypt_obj = get(fields, "ScryptObject", dict)
        sfields = {str(k).lower(): v for k, v in scrypt_obj.items()}
        flags = get(fields, "FeatureFlags", list, [])
        if not all(isinstance(f, str) for f in flags):
            raise bad("FeatureFlags must be strings")
        fido2 = get(fields, "FIDO2", dict, None)
        config = cls(
            creator=get(fields, "Creator", str, ""),
            encrypted_key=b64("EncryptedKey", get(fields, "EncryptedKey", str)),
            scrypt=ScryptParams(
                salt=b64("Salt", get(sfields, "Salt", str)),
                n=get(sfields, "N", int),
                r=get(sfields, "R", int),
                p=get(sfields, "P", int),
                key_len=get(sfields, "KeyLen", int),
            ),
            version=get(fields, "Version", int),
            feature_flags=tuple(flags),
            fido2=fido2,
            long_name_max=get(fields, "LongNameMax", int, 0),
        )
        config.validate()
        return config

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (``<path>.tmp``, then rename) with mode 0400, as gocryptfs does."""
        self.validate()
        path = os.fspath(path)
        tmp = path + ".tmp"
        data = self.to_json().encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        try:
            os.fchmod(fd, 0o400)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)


def conf_path(cipher_dir_or_conf: str | os.PathLike[str]) -> str:
    path = os.fspath(cipher_dir_or_conf)
    return os.path.join(path, CONF_NAME) if os.path.isdir(path) else path


def load_config(cipher_dir_or_conf: str | os.PathLike[str]) -> GocryptfsConfig:
    """Read and validate the config of a cipherdir (or a config file path)."""
    path = conf_path(cipher_dir_or_conf)
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except FileNotFoundError:
        raise NotACipherdir(f"{path}: no gocryptfs.conf (not a gocryptfs cipherdir)") from None
    except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        raise NotACipherdir(f"{path}: cannot read gocryptfs.conf: {exc.strerror}") from None
    if not data:
        raise NotACipherdir(f"{path}: corrupt config: empty file")
    return GocryptfsConfig.from_json(data, source=path)


def create_config(
    password: bytes | str,
    *,
    master_key: bytes | None = None,
    scrypt_logn: int = DEFAULT_LOGN,
    creator: str | None = None,
) -> tuple[GocryptfsConfig, bytes]:
    """Shorthand for :meth:`GocryptfsConfig.create`."""
    return GocryptfsConfig.create(password, master_key=master_key, scrypt_logn=scrypt_logn, creator=creator)
