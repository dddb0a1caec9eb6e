"""RFC 8785 canonical JSON against values known independently of our code (the RFC's own examples, upstream's vector)."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest

from cai_tui.crypto.canonical_json import CanonicalJsonError, canonical_json, es_number

# RFC 8785 Appendix B: IEEE 754 binary64 (hex) → its canonical JSON number.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize("bits,expected", APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert es_number(value) == expected
    assert canonical_json([value]) == f"[{expected}]".encode()


def test_rfc8785_section_3_2_2_example() -> None:
    # RFC 8785 §3.2.2: the input (as JSON text, parsed) and its canonical output, byte for byte.
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    want = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(text)) == want.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting_by_utf16_code_units() -> None:
    text = (
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
        ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    out = json.loads(canonical_json(json.loads(text)))
    # The RFC's stated order: \r, 1, \u0080, ö, €, 😀 (surrogates D83D…) before U+FB33.
    assert list(out.values()) == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_upstream_attestation_service_vector() -> None:
    # attestation-service/src/lib.rs (test of parse_runtime_data): canonical JSON, SHA-384.
    digest = hashlib.sha384(canonical_json({"b": 1, "a": "test", "c": {"d": "e"}})).hexdigest()
    assert digest == (
        "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3"
    )


def test_minimal_escaping_and_refusals() -> None:
    assert canonical_json("\x00\x1f\x7f\u2028é") == '"\\u0000\\u001f\x7f\u2028é"'.encode()
    assert canonical_json({"a": [], "b": {}}) == b'{"a":[],"b":{}}'
    for bad in (float("nan"), float("inf"), "\ud800", {1: "x"}, b"bytes", 10**400):
        with pytest.raises(CanonicalJsonError):
            canonical_json(bad)
