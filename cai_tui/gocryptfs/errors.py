"""One exception hierarchy for the gocryptfs engine.

Every error the engine raises on purpose derives from :class:`GocryptfsError`, so a caller can catch the whole family
at once and still tell the cases apart. Errors about stored data name the file (plaintext path where it is known, and
the ciphertext path) and, for file contents, the block.
"""

from __future__ import annotations


class GocryptfsError(Exception):
    """Base class of all errors raised by :mod:`cai_tui.gocryptfs`."""


class NotACipherdir(GocryptfsError):
    """The directory has no readable, well-formed ``gocryptfs.conf`` (or is no directory at all)."""


class WrongPassword(GocryptfsError):
    """The password does not unlock the master key in ``gocryptfs.conf``."""


class UnsupportedConfig(GocryptfsError):
    """``gocryptfs.conf`` is well-formed but asks for something this engine does not do.

    Unknown feature flags, another on-disk format version, AES-SIV, XChaCha20-Poly1305 or FIDO2.
    """


class InsecureConfig(UnsupportedConfig):
    """``gocryptfs.conf`` has scrypt parameters below the minimums gocryptfs enforces (a possible downgrade)."""


class CorruptionError(GocryptfsError):
    """Stored data does not decrypt or is malformed.

    ``path`` is the plaintext path relative to the cipherdir root where it is known (else the ciphertext path);
    ``cipher_path`` is the file on disk.
    """

    def __init__(self, path: str, reason: str, *, cipher_path: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.cipher_path = cipher_path
        super().__init__(self._message())

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Keyword-only constructor arguments: rebuild from attributes so errors survive process pools.
        return (_rebuild, (type(self), dict(self.__dict__)))

    def _message(self) -> str:
        where = self.path
        if self.cipher_path and self.cipher_path != self.path:
            where = f"{self.path} (stored as {self.cipher_path})"
        return f"{where}: {self.reason}"


def _rebuild(cls: type[CorruptionError], state: dict[str, object]) -> CorruptionError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._message())
    return err


class CorruptFile(CorruptionError):
    """A file's contents are corrupt: bad header, impossible size, or a block that fails authentication.

    ``block`` is the 0-based number of the 4096-byte plaintext block, or ``None`` for the header or the file size.
    """

    def __init__(self, path: str, block: int | None, reason: str, *, cipher_path: str | None = None) -> None:
        self.block = block
        super().__init__(path, reason, cipher_path=cipher_path)

    def _message(self) -> str:
        text = super()._message()
        if self.block is not None:
            text = f"{text} (block {self.block})"
        return text


class CorruptName(CorruptionError):
    """A stored name does not decrypt, a ``gocryptfs.longname.*.name`` file is missing or bad, or a
    ``gocryptfs.diriv`` is missing or bad."""


class InvalidName(GocryptfsError, ValueError):
    """A plaintext name cannot be stored: empty, longer than 255 bytes, contains NUL or ``/``, or is ``.``/``..``."""


class UnsupportedFileType(GocryptfsError):
    """The plaintext tree holds something the writer does not encrypt (device node, FIFO, socket)."""


class CipherdirNotEmpty(GocryptfsError, FileExistsError):
    """The target of a new cipherdir (or of a decryption) exists and is not an empty directory."""
