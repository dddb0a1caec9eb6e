"""ttrpc, the framed-protobuf RPC the attestation agent serves on its unix socket (containerd/ttrpc, as the Rust crate
that TNG and the CDH link speaks it).

A message is a 10-byte header — payload length (u32 BE), stream id (u32 BE), type (1 request, 2 response), flags —
then a protobuf payload: ``Request {string service = 1; string method = 2; bytes payload = 3; int64 timeout_nano = 4;
repeated KeyValue metadata = 5}`` or ``Response {Status status = 1; bytes payload = 2}`` with ``Status {int32 code =
1; string message = 2}``. Clients use odd stream ids. Only the protobuf wire types these messages use are handled:
varint (0) and length-delimited (2).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

HEADER = struct.Struct(">IIBB")
TYPE_REQUEST = 1
TYPE_RESPONSE = 2
MAX_MESSAGE = 4 << 20  # ttrpc's DEFAULT_PAGE_SIZE limit
# gRPC status codes ttrpc reuses
OK = 0
INVALID_ARGUMENT = 3
NOT_FOUND = 5
UNIMPLEMENTED = 12
INTERNAL = 13
CODE_NAMES = {
    OK: "OK",
    INVALID_ARGUMENT: "INVALID_ARGUMENT",
    NOT_FOUND: "NOT_FOUND",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
}


class ProtocolError(Exception):
    """The peer sent something that is not ttrpc."""


# --- protobuf, the small part of it ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def parse(data: bytes) -> dict[int, list[int | bytes]]:
    """Field number → values (ints for varints, bytes for length-delimited), in order."""
    fields: dict[int, list[int | bytes]] = {}
    i = 0

    def read_varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            if i >= len(data) or shift > 63:
                raise ProtocolError("truncated varint")
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = read_varint()
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value = read_varint()
        elif wire == 2:
            size = read_varint()
            if i + size > len(data):
                raise ProtocolError("truncated field")
            value, i = data[i : i + size], i + size
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ProtocolError(f"unsupported wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def first_bytes(fields: dict[int, list[int | bytes]], number: int) -> bytes:
    for v in fields.get(number, []):
        if isinstance(v, bytes):
            return v
    return b""


def first_int(fields: dict[int, list[int | bytes]], number: int) -> int:
    for v in fields.get(number, []):
        if isinstance(v, int):
            return v
    return 0


# --- frames ----------------------------------------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("remote stream closed")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    """(stream id, type, payload); EOFError when the peer closed."""
    length, stream, kind, _flags = HEADER.unpack(_recv_exact(sock, HEADER.size))
    if length > MAX_MESSAGE:
        raise ProtocolError(f"message length {length} exceeds the maximum message size of {MAX_MESSAGE}")
    return stream, kind, _recv_exact(sock, length)


def write_frame(sock: socket.socket, stream: int, kind: int, payload: bytes) -> None:
    sock.sendall(HEADER.pack(len(payload), stream, kind, 0) + payload)


@dataclass(frozen=True)
class Request:
    service: str
    method: str
    payload: bytes
    timeout_nano: int = 0

    def encode(self) -> bytes:
        out = field_bytes(1, self.service.encode()) + field_bytes(2, self.method.encode())
        out += field_bytes(3, self.payload)
        if self.timeout_nano:
            out += field_varint(4, self.timeout_nano)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Request:
        f = parse(data)
        return cls(
            first_bytes(f, 1).decode("utf-8", "replace"),
            first_bytes(f, 2).decode("utf-8", "replace"),
            first_bytes(f, 3),
            first_int(f, 4),
        )


@dataclass(frozen=True)
class Response:
    code: int = OK
    message: str = ""
    payload: bytes = b""

    def encode(self) -> bytes:
        status = (field_varint(1, self.code) if self.code else b"") + (
            field_bytes(2, self.message.encode()) if self.message else b""
        )
        return field_bytes(1, status) + (field_bytes(2, self.payload) if self.payload else b"")

    @classmethod
    def decode(cls, data: bytes) -> Response:
        f = parse(data)
        status = parse(first_bytes(f, 1))
        return cls(first_int(status, 1), first_bytes(status, 2).decode("utf-8", "replace"), first_bytes(f, 2))

    def status_text(self) -> str:
        """As the Rust crate prints ``Error::RpcStatus``: ``rpc status: Status { code: …, message: "…" }``."""
        name = CODE_NAMES.get(self.code, str(self.code))
        return f'rpc status: Status {{ code: {name}, message: "{self.message}" }}'
