"""EME (ECB-Mix-ECB), the wide-block mode gocryptfs uses to encrypt file names.

EME (Halevi and Rogaway, "A Parallelizable Enciphering Mode", 2003) turns a 16-byte block cipher into a tweakable
cipher over 1 to 128 blocks: every output byte depends on every input byte. gocryptfs uses it with AES-256 and the
directory IV as the tweak, in the variant of ``github.com/rfjakob/eme``:

* blocks are 128-bit values read *little-endian*; doubling in GF(2^128) is a left shift that folds a carry out of the
  top bit back in as ``0x87``;
* ``L = 2 * AES-encrypt(K, 0^16)`` and ``L_j = 2^j * L`` -- built with AES *encryption* in both directions;
* decryption runs the same steps with AES decryption in place of AES encryption.

The three AES passes run as one ECB call each, so a name costs three calls into OpenSSL.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_SIZE = 16
MAX_BLOCKS = 128  # 2048 bytes, the limit of the reference implementation
_MASK = (1 << 128) - 1


def gf_double(x: int) -> int:
    """Multiply a little-endian 128-bit value by 2 in GF(2^128) (reduction polynomial x^128 + x^7 + x^2 + x + 1)."""
    x <<= 1
    if x >> 128:
        x = (x & _MASK) ^ 0x87
    return x


def _to_ints(data: bytes, count: int) -> list[int]:
    return [int.from_bytes(data[16 * j : 16 * j + 16], "little") for j in range(count)]


def _to_bytes(values: list[int]) -> bytes:
    return b"".join(v.to_bytes(16, "little") for v in values)


class EME:
    """EME over AES with a fixed key.

    ``encrypt``/``decrypt`` take a 16-byte tweak and 16..2048 bytes (a multiple of 16).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError(f"AES key must be 16, 24 or 32 bytes, not {len(key)}")
        self._cipher = Cipher(algorithms.AES(bytes(key)), modes.ECB())
        encryptor = self._cipher.encryptor()
        value = int.from_bytes(encryptor.update(bytes(BLOCK_SIZE)), "little")
        table = []
        for _ in range(MAX_BLOCKS):
            value = gf_double(value)
            table.append(value)
        self._ltable = table

    def encrypt(self, tweak: bytes, data: bytes) -> bytes:
        return self._transform(tweak, data, encrypt=True)

    def decrypt(self, tweak: bytes, data: bytes) -> bytes:
        return self._transform(tweak, data, encrypt=False)

    def _transform(self, tweak: bytes, data: bytes, *, encrypt: bool) -> bytes:
        if len(tweak) != BLOCK_SIZE:
            raise ValueError(f"EME tweak must be {BLOCK_SIZE} bytes, not {len(tweak)}")
        if len(data) % BLOCK_SIZE:
            raise ValueError(f"EME input must be a multiple of {BLOCK_SIZE} bytes, not {len(data)}")
        m = len(data) // BLOCK_SIZE
        if not 1 <= m <= MAX_BLOCKS:
            raise ValueError(f"EME works on 1 to {MAX_BLOCKS} blocks, not {m}")
        # ECB is stateless between blocks, so one context serves all three passes.
        ecb = self._cipher.encryptor() if encrypt else self._cipher.decryptor()
        ltable = self._ltable
        t = int.from_bytes(tweak, "little")

        # PPj = Pj xor L_j ; PPPj = E(PPj)
        p = _to_ints(data, m)
        ppp = _to_ints(ecb.update(_to_bytes([p[j] ^ ltable[j] for j in range(m)])), m)

        # MP = xor of all PPPj xor T ; MC = E(MP) ; M = MP xor MC
        mp = t
        for value in ppp:
            mp ^= value
        mc = int.from_bytes(ecb.update(mp.to_bytes(16, "little")), "little")
        mask = mp ^ mc

        # CCCj = PPPj xor 2^(j-1) M for j >= 1 ; CCC1 = MC xor T xor (xor of CCCj, j >= 1)
        ccc = [0] * m
        first = mc ^ t
        for j in range(1, m):
            mask = gf_double(mask)
            ccc[j] = ppp[j] ^ mask
            first ^= ccc[j]
        ccc[0] = first

        # Cj = E(CCCj) xor L_j
        cc = _to_ints(ecb.update(_to_bytes(ccc)), m)
        return _to_bytes([cc[j] ^ ltable[j] for j in range(m)])
