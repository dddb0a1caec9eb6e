"""XML in and out: the answer documents oss2 parses, and the request documents it sends.

Answers are built from ``(tag, text-or-children)`` pairs so that escaping happens in one place; characters XML 1.0
cannot carry are replaced, so no answer is ever unparseable. Request bodies are parsed with the standard library after
refusing DTDs (no entity expansion), and only the elements the operation needs are read.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate
from typing import Union

from .errors import OssError, malformed_xml

Node = tuple[str, Union[str, "list[Node]"]]

_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean_text(text: str) -> str:
    """Text with every character XML 1.0 cannot carry replaced by U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


def has_invalid_xml_chars(text: str) -> bool:
    return _XML_INVALID.search(text) is not None


def _escape(text: str) -> str:
    return clean_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render(node: Node, out: list[str]) -> None:
    tag, value = node
    if isinstance(value, str):
        if value == "":
            out.append(f"<{tag}></{tag}>")
        else:
            out.append(f"<{tag}>{_escape(value)}</{tag}>")
        return
    out.append(f"<{tag}>")
    for child in value:
        _render(child, out)
    out.append(f"</{tag}>")


def document(root: Node) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _render(root, out)
    out.append("\n")
    return "".join(out).encode("utf-8")


def error_document(err: OssError, request_id: str, host_id: str) -> bytes:
    children: list[Node] = [
        ("Code", err.code),
        ("Message", err.message),
        ("RequestId", request_id),
        ("HostId", host_id),
    ]
    children.extend((k, v) for k, v in err.extra.items())
    if err.ec:
        children.append(("EC", err.ec))
        children.append(("RecommendDoc", f"https://api.aliyun.com/troubleshoot?q={err.ec}"))
    return document(("Error", children))


def iso8601(ts: float) -> str:
    """``2012-02-24T06:07:48.000Z`` as OSS lists times (whole seconds; oss2 accepts nothing but ``.000Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def http_date(ts: float) -> str:
    """RFC 1123 (``Sat, 05 Dec 2015 11:10:29 GMT``), locale independent."""
    return formatdate(ts, usegmt=True)


# --- parsing request bodies -------------------------------------------------------------------------------------------


def parse(body: bytes) -> ET.Element:
    """Parse a small request document; DTDs and entities are refused (MalformedXML)."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise malformed_xml()
    try:
        return ET.fromstring(body)
    except (ET.ParseError, ValueError, UnicodeDecodeError):
        raise malformed_xml() from None


def parse_complete_upload(body: bytes) -> list[tuple[int, str]]:
    """``<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>…`` → [(number, etag-without-quotes)]."""
    root = parse(body)
    if root.tag != "CompleteMultipartUpload":
        raise malformed_xml()
    parts: list[tuple[int, str]] = []
    for part in root.findall("Part"):
        num = part.findtext("PartNumber")
        etag = part.findtext("ETag")
        if num is None or etag is None:
            raise malformed_xml()
        try:
            n = int(num.strip())
        except ValueError:
            raise malformed_xml() from None
        parts.append((n, etag.strip().strip('"').upper()))
    if not parts:
        raise malformed_xml()
    return parts
