"""Field types with the validation messages a user understands (what was wrong, what is expected).

One source of truth per fact: the checks, renderers and wizard reuse these parsers.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError


def _err(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


# --- Trustee / KBS ---------------------------------------------------------------------------------
KBS_URI_RE = re.compile(r"^kbs://[^/]*/([^/\s]+)/([^/\s]+)/([^/\s]+)$")


def parse_kbs_uri(text: str) -> tuple[str, str, str]:
    m = KBS_URI_RE.match(text.strip())
    if not m:
        raise ValueError(text)
    return m.group(1), m.group(2), m.group(3)


def _kbs_uri(v: str) -> str:
    try:
        parse_kbs_uri(v)
    except ValueError:
        raise _err(
            "kbs_uri",
            "MODEL_KEY_ID must look like kbs:///<repository>/<type>/<tag> "
            "(e.g. kbs:///default/aliyun/model-decryption-key; with the KMS backend <tag> is the KMS secret name)",
        ) from None
    return v.strip()


KbsUri = Annotated[str, AfterValidator(_kbs_uri), WithJsonSchema({"type": "string", "pattern": KBS_URI_RE.pattern})]


def _http_url(v: str) -> str:
    v = v.strip()
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _err(
            "url_scheme",
            "must be a URL with its scheme, e.g. http://alb-xxxx.cn-beijing.alb.aliyuncsslb.com/trustee "
            "(without http:// or https:// the containers fail with 'builder error for url')",
        )
    if any(c.isspace() for c in v):
        raise _err("url_space", "a URL cannot contain spaces")
    return strip_trailing_slash(v)


def strip_trailing_slash(url: str) -> str:
    """The one spelling of a base URL the model holds: no trailing ``/`` (``http://h/trustee/`` → ``http://h/trustee``).

    Consumers append their own paths (``/as/``, ``/kbs/v0/…``) and the seed's ``TRUSTEE_URL`` slash
    (:mod:`cai_tui.render.cai_env_vars`); none of them strips again. A recipe file keeps the text the user wrote
    (:func:`cai_tui.recipe.yaml_io.dumps_recipe` leaves a value the model reads the same way as it is)."""
    return url.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]

# --- OSS --------------------------------------------------------------------------------------------
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def parse_bucket_path(text: str) -> tuple[str, str]:
    """``bucket:/path`` → (bucket, "path/") as the seed's MODEL_OSS_BUCKET_PATH spells it."""
    bucket, sep, path = text.partition(":")
    if not sep or not BUCKET_RE.match(bucket) or not path.startswith("/"):
        raise ValueError(text)
    return bucket, path.lstrip("/")


def _bucket_path(v: str) -> str:
    try:
        parse_bucket_path(v.strip())
    except ValueError:
        raise _err(
            "bucket_path",
            "bucket path must be <bucket>:/<path>; bucket names are 3–63 of a-z 0-9 -, "
            "not starting or ending with - (e.g. conf-ai:/qwen2.5-3b-gocryptfs/)",
        ) from None
    return v.strip()


BucketPath = Annotated[str, AfterValidator(_bucket_path)]


def _bucket(v: str) -> str:
    if not BUCKET_RE.match(v):
        raise _err("bucket", "bucket names are 3–63 of a-z 0-9 -, not starting or ending with -")
    return v


BucketName = Annotated[str, AfterValidator(_bucket)]

REGION_RE = re.compile(r"^[a-z]{2,}-[a-z0-9-]+$")


def _region(v: str) -> str:
    if not REGION_RE.match(v):
        raise _err("region", "region IDs look like cn-beijing or cn-hangzhou")
    return v


Region = Annotated[str, AfterValidator(_region)]


# --- KMS / Helm -------------------------------------------------------------------------------------
def _kms_instance(v: str) -> str:
    if not re.match(r"^kst-[a-z0-9]{6,40}$", v):
        raise _err(
            "kms_instance",
            "KMS instance IDs look like kst-hzz66a0xxxxxxxe16pckc (kst- then lower-case letters and digits)",
        )
    return v


KmsInstanceId = Annotated[str, AfterValidator(_kms_instance)]

SEMVER_RE = re.compile(r"^v?\d+\.\d+\.\d+([.-][0-9A-Za-z.-]+)?$")


def _semver(v: str) -> str:
    v = str(v)
    if not SEMVER_RE.match(v):
        raise _err("version", "expected a version like 1.0.0")
    return v


Version = Annotated[
    str, BeforeValidator(lambda v: str(v) if isinstance(v, (int, float)) else v), AfterValidator(_semver)
]


def _k8s_name(v: str) -> str:
    if not re.match(r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", v):
        raise _err("k8s_name", "Kubernetes names are lower-case letters, digits and -, up to 53 characters")
    return v


K8sName = Annotated[str, AfterValidator(_k8s_name)]


def _secret_name(v: str) -> str:
    if not re.match(r"^[A-Za-z0-9_/+=.@-]{1,192}$", v):
        raise _err("kms_secret_name", "KMS secret names are 1–192 of letters, digits and _/+=.@-")
    return v


KmsSecretName = Annotated[str, AfterValidator(_secret_name)]

# --- Instance, network ------------------------------------------------------------------------------
INSTANCE_TYPES = ("ecs.gn8v-tee.4xlarge", "ecs.gn8v-tee.6xlarge")


def _instance_type(v: str) -> str:
    if v not in INSTANCE_TYPES:
        raise _err("instance_type", "instance type must be ecs.gn8v-tee.4xlarge or ecs.gn8v-tee.6xlarge")
    return v


InstanceType = Annotated[str, AfterValidator(_instance_type)]


def _port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v.strip())
        else:
            raise _err("port", "a port is a whole number 1–65535")
    if not 1 <= v <= 65535:
        raise _err("port", "a port is a whole number 1–65535")
    return v


Port = Annotated[int, BeforeValidator(_port), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535})]


def _ip(v: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(v).strip()))
    except ValueError:
        raise _err("ip", "expected an IP address like 203.0.113.7") from None


IpAddress = Annotated[str, BeforeValidator(_ip)]


def _private_cidr(v: Any) -> str:
    try:
        net = ipaddress.ip_network(str(v).strip(), strict=True)
    except ValueError as e:
        raise _err("cidr", f"expected a network like 10.88.0.0/16 with host bits zero ({e})") from None
    if not net.is_private or net.is_loopback or net.is_link_local or net.prefixlen < 8:
        raise _err(
            "cidr_private", "the container subnet must be a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)"
        )
    if net.num_addresses < 4:
        raise _err("cidr_small", "the subnet is too small for a bridge, a gateway and a container (use /29 or larger)")
    return str(net)


PrivateCidr = Annotated[str, BeforeValidator(_private_cidr)]

BDF_RE = re.compile(r"^(?:([0-9a-fA-F]{4,8}):)?([0-9a-fA-F]{2}):([01][0-9a-fA-F])\.([0-7])$")


def parse_bdf(text: str) -> str:
    """Normalise a PCI address to sysfs form ``DDDD:BB:SS.F``; nvidia-smi's 8-digit domain is accepted."""
    m = BDF_RE.match(text.strip())
    if not m:
        raise ValueError(text)
    domain = int(m.group(1) or "0", 16)
    if domain > 0xFFFF:
        raise ValueError(text)
    return f"{domain:04x}:{m.group(2).lower()}:{m.group(3).lower()}.{m.group(4)}"


def _bdf(v: Any) -> str:
    try:
        return parse_bdf(str(v))
    except ValueError:
        raise _err(
            "bdf", "a PCI address is DDDD:BB:SS.F in hex, e.g. 0000:81:00.0 (see `lspci -nn -D | grep -i nvidia`)"
        ) from None


Bdf = Annotated[str, BeforeValidator(_bdf)]


def _abs_path(v: str) -> str:
    if not (v.startswith("/") or v.startswith("~")):
        raise _err("abs_path", "expected an absolute path (starting with / or ~)")
    if "\x00" in v:
        raise _err("path_nul", "a path cannot contain NUL")
    return v


AbsPath = Annotated[str, AfterValidator(_abs_path)]

TARGET_RE = re.compile(
    r"^(local|ssh://(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9._:\[\]-]+(?::\d{1,5})?|docker://[A-Za-z0-9_.-]+|ctr://(?:[A-Za-z0-9_.-]+/)?[A-Za-z0-9_.-]+(?:\?address=/[^\s?#&]+)?)$"
)


def _target(v: str) -> str:
    if not TARGET_RE.match(v):
        raise _err(
            "target",
            "a target is local, ssh://user@host[:port], docker://CONTAINER or ctr://[NAMESPACE/]TASK[?address=SOCKET]",
        )
    return v


TargetUri = Annotated[str, AfterValidator(_target)]

CHECK_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_*]+)+$")


def _check_id(v: str) -> str:
    if not CHECK_ID_RE.match(v):
        raise _err(
            "check_id", "check ids are dotted lower-case names like trustee.auth_nonce (globs like gpu.* allowed)"
        )
    return v


CheckId = Annotated[str, AfterValidator(_check_id)]


def _fraction(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise _err("fraction", "expected a number between 0 and 1, e.g. 0.95") from None
    if not 0 < f <= 1:
        raise _err("fraction", "GPU memory utilisation is a fraction: greater than 0, at most 1 (e.g. 0.95)")
    return f


Fraction = Annotated[float, BeforeValidator(_fraction)]


def _sam_key_id(v: str) -> str:
    n = len(v.encode("utf-8"))
    if not 8 <= n <= 48:
        raise _err("sam_key_id", "Sam key ID must be 8–48 bytes (e.g. LD_Demo_0001)")
    if not re.match(r"^[A-Za-z0-9_.-]+$", v):
        raise _err("sam_key_id_chars", "Sam key ID may hold letters, digits, _ . - (it becomes a directory name)")
    return v


SamKeyId = Annotated[str, AfterValidator(_sam_key_id)]
