"""Helpers the TNG models share: a rule broken (TNG's words, the fix, where below the field), serde-like scalar types."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, StrictStr
from pydantic_core import PydanticCustomError


def rule(message: str, fix: str, *sub: str | int) -> PydanticCustomError:
    """A configuration rule TNG enforces; ``sub`` is the JSON path below the field that raised it."""
    return PydanticCustomError("tng_rule", "{message}", {"message": message, "fix": fix, "sub": list(sub)})


def _one_or_many(value: Any) -> Any:
    """serde_with ``OneOrMany``: one object stands for a list of one."""
    return value if isinstance(value, list) else [value]


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise rule(
            f"{value!r} is not an IPv4 address (TNG parses this field as one)",
            "write an IPv4 address such as 127.0.0.1 (a hostname is not accepted here)",
        ) from None
    return value


def _ipv4_cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise rule(
            f"{value!r} is not an IPv4 address or CIDR with its host bits zero",
            "write an address such as 192.168.1.1 or a network such as 10.0.0.0/24",
        ) from None
    return value


Port = Annotated[StrictInt, Field(ge=0, le=65535)]
U32 = Annotated[StrictInt, Field(ge=0, le=0xFFFFFFFF)]
U64 = Annotated[StrictInt, Field(ge=0, le=0xFFFFFFFFFFFFFFFF)]
Str = StrictStr
Bool = StrictBool
Ipv4 = Annotated[StrictStr, AfterValidator(_ipv4)]
Ipv4Cidr = Annotated[StrictStr, AfterValidator(_ipv4_cidr)]
OneOrMany = BeforeValidator(_one_or_many)
