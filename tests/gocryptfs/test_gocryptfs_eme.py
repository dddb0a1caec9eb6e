"""EME known-answer tests.

Vectors from github.com/rfjakob/eme (eme32_test.go, eme_test.go): the EME-32 draft vectors of IEEE P1619
(grouper.ieee.org/groups/1619/email/pdf00020.pdf and msg00218.html) and the self-generated 16- and 2048-byte ones.
"""

from __future__ import annotations

import hashlib

import pytest

from cai_tui.gocryptfs.eme import EME, gf_double

# Encrypt 512 zero bytes with an all-zero key and tweak.
ENC512 = bytes.fromhex(
    "9f2e6c3daecae79e8839b0588ff378cd0668970b95691cb00182b9e34cd658ed3c9c276838cc5e1411fcb8cf3da1c0f3"
    "0875804c9df51157b0791100d2551334834cf4024f6b718fbc7daba07d14eb7cbc79c261b1eb036d0c9f85b914385840"
    "727284005f06a9c1627c0b7fb12a1f81fa83c4b035db006cce846d0756db9fb2448ee5628d2376ee13954213db3dca72"
    "5f2c67950eaf2cdac8a27a0433a14c96927d9145dd93e0b46e670f6c4db8add014b8880efb9a97bec5cd05bba43dcc35"
    "058045ae8168df6e67779198fcc72808ce29c7b5aefdbc9e3ee65117283bfa2e195f82ce1962dd8112cb57e8040d7767"
    "33d3bb331ea6300f91dee0cbeb2fc9afd341f5515e22371e442b86e70287546a166ec2aef89f291be62afc2a96891e44"
    "6ef6f162735574d10cff4a183de2760b5e145deaad3efde1da4b2836c665c5ec4b54cb989d277311c42db4862db2920c"
    "3942958e54f64e365e52190ed81a02d73bf78a8ae5cc83e03203ef421614b79ae984b67ee93483d5eb1ea7b4fd954cc3"
    "5059bd4d932ef34271825045d73effef2ed3489871fda2cc73924b4d459d1c6ee525421e0550d3ab876f615395ac4a54"
    "d20478a442d85c9a3c9c7fa148f2b9dcadaa83cf40e9e464da6036a55cdb873b50c1060ecc27b48dc0afc76ef73f1489"
    "281c08efce7fec47edd823f2f562b333ac209c2cd3cc577c28eedaafcedd89a6"
)
# Decrypt 512 zero bytes with an all-zero key and tweak.
DEC512 = bytes.fromhex(
    "080905dee8ebcc89f68bd1af635db3f5b60c2f13f7c768fceb1220f6c227fd835f293e85f1eaa8ee2322f54291bf051e"
    "7b15af84c7eaa4e85158af7f4e6ff24a62bacff6dbf91f433f3bd564dffbe9fe1b0e14d27687589498d5e8ca11acba2b"
    "c6016d7823e3036c61ce9777ec2445890779027f7d494893d92f19bdfe160ef82c36069ca887d84ea00ccc40130cf7c4"
    "118c5d0822a5e1f493cdae96f5752031b453e4cb8608c8f2ba2c78c941124c18e39f50ab74b83147aa3fb800537eb9ac"
    "55d737552e050375f607c59b4213d87e58e8da6e23029c9cb807ac63133b9fdddad8712bd7821137d9f8fdc3e28aeb08"
    "ee2fae3ec1f80d9126a3d2d0e4e4f1c6424ce6b5e973e52703afb31cee7990da82b316189ad16fe059921c60a95a1208"
    "71065b9ed649d2117dfb0ce5b53595119f2177bea462f76660c6a07c810d21e185e2dae559c27f14093f21a96d4e2a81"
    "41d76a3f964aa70bf7e929e73224bd9f1719fdff96bf4ca5db516627225760f3d2d8670a4b82e16a8b4358ecd781b0ee"
    "a22a29d0764424e91e3dc7a6a1cedd148c4bbb1b524b9c8dd3f3d15340775fe9c98eec220b524a8d9595d2f43c6783e6"
    "03a35b8df96a168975acf5ac4ea47e02b73a8ce6aff8e52dad768979bd7392b3050dd3b4e4790e25e9a34ee607db5a58"
    "5d16ca6b16aa76372ab49e31df4865073af804a5c9dab34420f260e4bd840829"
)
# Encrypt ENC512 100 times with key = ENC512[:32], tweak = ENC512[32:48].
ENC512X100 = bytes.fromhex(
    "36008c95e732a23194937cc4dded30ffee0ff600f3ee8796a58af9bb124ad02850fb30fac78316a64693acd38602e4c7"
    "04a4152fb2d4383eeb1d85b10f9e39be8d619f689303a5b9c3f7d89baa6f2e43afaa0bd2ac3452da6aa20fff33edb8f3"
    "07247d055ecbb6e4b539c2c53088dda499b5d967f98bcec4a54f4d272643e13c4226f69ee627a04f3aaea07e033d3c4f"
    "88a6509c727588b152ca41415d697fdfdd440b2386bb9a5770ca281c2207d3eb9b27fc6a2e482e799588c77b6ba3a1a4"
    "660e77ed708a65df22863704bbe944292178362892864862d3c9a18dd70420c887e958a4306ec84fe7f66ddcdeba5bee"
    "dab032fbe8d4ddc45bd484349fd4cff5d729905fb560ac02ba1c83d8c5b71f70728f90d1d35db3651a303f9db9b53feb"
    "99194405a085f5434ed1bb4e071722376131633827c54b86153c7928e5d9e58358ef4a2efefe165e94fec5c2f06991d9"
    "f61eb4d0e6fa5a28d6ed62216e4adc2b507ae23f256188e740d425fdc86e9b226ca8f02f9d7460ee10ceb0ce7306902b"
    "b5393e4c1fcfd9226c572c1696e15ffcbbe89a9ea3e09cfa2ab463a37ba6ebedcc025979fbc0eda888db93ecaac44869"
    "a176a94e59564eafc8e9781ddbce6b74c984ec1f27f7b9c0e4aeb714b147e27934bf09a15f9013299a2d32072a7c112d"
    "064852e0c3345d8834f16f1fb280b9eaf88cadd40ca29c428666cf533fb05c1e"
)
# Decrypt DEC512 100 times with key = DEC512[:32], tweak = DEC512[32:48].
DEC512X100 = bytes.fromhex(
    "78d8f9c2baaebcb97c3914fe4fd9b9ed1b0fd08c64ce0f7fa440c2b2317cacc610e75ae226a64c8de42736867dbc5fe2"
    "ac663b6db555d79dc480b707c10411b831aa3eaa5a306fdf95c4ea0684b78bd6245275b5bc245758b238274c2b7d7b8f"
    "d1b90e390cd10ed54ad7d7221a1aae56f815f7026d3ee3fb1232f85e500ae8756a53e24038e9d254b4f09486f95cab88"
    "2502b77c95795514909260314febdf2ac0d4fd47f5d6fda2ba66d1b125a900d78cab58bf8eb9f241d080061a2e46be3c"
    "21f748459426f79b619e8c8125f06a607c9a55e4fd12e817e390fb5f8c5a0576cfd25f5e0acb9dc080b9c01c7c9a4127"
    "159b8a4cd0cffae0f241bfbf8e41f24d5068bd3454a9be8e4f99881a7f6ff21e3a7a33700fc1f82b6413e3f97221a617"
    "16155449cfe87a3d5749f3919611def95d58e42bd6d89143e3a0ca588a59b79a550632fedd84629a7075b089f2b0802b"
    "69b82ee0f603f03e99263fb6951991d8804963eda1231b250df55ef79eefde3c99b9cd91eaa79563a9cd16136db2436f"
    "4d721f9123948afc0b6333cf2ed4caaba3404edd2de8f6556677c9b286a20634394cb7ea72dd7ee3657d6ee1cfed8c3b"
    "94b8bcc5784702577fe400b38a7b08957473cb57efb861f2eb9eec5a1200cbd75b41433ff1756ce72988ca9a690f6597"
    "ca0e8c98a15c8b5471bc1167978ec83bc5b5660b4bc9938a41dbcf8fce321d1f"
)
# TestEnc2048: 2048 zero bytes, all-zero key and tweak (first and last 16 bytes and the SHA-256 of the output).
ENC2048_HEAD = bytes.fromhex("630500884158a8d41216aaa6351e92ea")
ENC2048_TAIL = bytes.fromhex("4eb93771340ed9e323d09e4256b7e5ac")
ENC2048_SHA256 = "44ea4ab31f9e4c83420f1bfe7782ded2e2421c92ac416a830cf46f3ea4cb5ff1"

ZERO_KEY = bytes(32)
ZERO_TWEAK = bytes(16)


def test_enc16() -> None:
    assert EME(ZERO_KEY).encrypt(ZERO_TWEAK, bytes(16)) == bytes.fromhex("f1b9ce8ca15a4ba9fb476905434b9fd3")


def test_enc512_and_back() -> None:
    eme = EME(ZERO_KEY)
    assert eme.encrypt(ZERO_TWEAK, bytes(512)) == ENC512
    assert eme.decrypt(ZERO_TWEAK, ENC512) == bytes(512)


def test_dec512_and_back() -> None:
    eme = EME(ZERO_KEY)
    assert eme.decrypt(ZERO_TWEAK, bytes(512)) == DEC512
    assert eme.encrypt(ZERO_TWEAK, DEC512) == bytes(512)


def test_enc2048() -> None:
    out = EME(ZERO_KEY).encrypt(ZERO_TWEAK, bytes(2048))
    assert out[:16] == ENC2048_HEAD
    assert out[-16:] == ENC2048_TAIL
    assert hashlib.sha256(out).hexdigest() == ENC2048_SHA256


@pytest.mark.parametrize(("start", "expected", "encrypt"), [(ENC512, ENC512X100, True), (DEC512, DEC512X100, False)])
def test_iterated_100(start: bytes, expected: bytes, encrypt: bool) -> None:
    eme = EME(start[:32])
    tweak = start[32:48]
    data = start
    for _ in range(100):
        data = eme.encrypt(tweak, data) if encrypt else eme.decrypt(tweak, data)
    assert data == expected


def test_roundtrip_all_lengths_and_wide_diffusion() -> None:
    eme = EME(bytes(range(32)))
    tweak = bytes(range(16, 32))
    for blocks in range(1, 129):
        data = bytes((i * 7 + blocks) % 256 for i in range(16 * blocks))
        out = eme.encrypt(tweak, data)
        assert len(out) == len(data)
        assert eme.decrypt(tweak, out) == data
        if blocks > 1:
            # flipping the last input bit changes every output block (a wide-block cipher)
            flipped = eme.encrypt(tweak, data[:-1] + bytes([data[-1] ^ 1]))
            assert all(out[i : i + 16] != flipped[i : i + 16] for i in range(0, len(out), 16))
    assert eme.encrypt(bytes(16), bytes(32)) != eme.encrypt(bytes(15) + b"\x01", bytes(32))


def test_gf_double() -> None:
    assert gf_double(1) == 2
    assert gf_double(1 << 127) == 0x87
    assert gf_double((1 << 127) | 1) == 0x87 ^ 2


@pytest.mark.parametrize(
    ("tweak", "data"), [(bytes(15), bytes(16)), (bytes(16), bytes(15)), (bytes(16), b""), (bytes(16), bytes(2064))]
)
def test_rejects_bad_input(tweak: bytes, data: bytes) -> None:
    with pytest.raises(ValueError):
        EME(ZERO_KEY).encrypt(tweak, data)


def test_rejects_bad_key() -> None:
    with pytest.raises(ValueError):
        EME(bytes(31))
