"""TNG 2.x configuration (tng/src/config/*.rs at v2.8.0), with the changes of earlier 2.x releases by version.

serde's rules are kept where they decide: objects marked ``deny_unknown_fields`` refuse unknown keys (Strict here);
objects read through ``flatten`` or ``untagged`` do not (Lenient). One-or-many fields accept one object or a list.
Gates: ``ohttp`` (alias of ``encap_in_http``/``decap_from_http``) from 2.2.5; ``verify.as_type`` after 2.5.0
(``as_is_grpc`` is then ignored) and from 2.6.0 a gRPC ``as_addr`` refused by the token verifier; ``mapping.rules``,
an IPv4 ``mapping.*.host``, ``mapping_udp``, ``hook`` (``tng exec`` only) and ``ohttp.header_passthrough`` from 2.7.0;
``ohttp.path_default``/``tls``/``tls_ca_certs`` from 2.8.0. Other 2.x additions (``socks5``, ``rats_tls``, ``trace``,
``direct_forward`` …) are not gated by release: a 2.x before the one that added them is judged as 2.8 would.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from . import ra_v2
from .models_v1 import one_of
from .rules import U32, U64, Bool, Ipv4, Ipv4Cidr, OneOrMany, Port, Str, rule


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Endpoint(Strict):
    host: Str | None = None
    port: Port


class LegacyEndpoint(Strict):  # before 2.7.0
    host: Str | None = None
    port: Port


class RuleEndpoint(Lenient):
    host: Ipv4 | None = None
    port: Port
    port_end: Port | None = None


class MappingRule(Lenient):
    in_: RuleEndpoint = Field(alias="in")
    out: RuleEndpoint


class Mapping27(Lenient):
    """``MappingDe`` (untagged): ``{"rules": [...]}`` or the legacy ``{"in", "out"}``, then TNG's own checks."""

    rules: list[MappingRule] | None = None
    in_: RuleEndpoint | None = Field(None, alias="in")
    out: RuleEndpoint | None = None

    @model_validator(mode="after")
    def _checked(self) -> Any:
        if self.rules is None:
            if self.in_ is None or self.out is None:
                raise rule(
                    "data did not match any variant of untagged enum MappingDe",
                    'give either "rules": [{"in": {…}, "out": {…}}] or "in" and "out"',
                )
            rules = [MappingRule.model_validate({"in": self.in_.model_dump(), "out": self.out.model_dump()})]
        else:
            rules = self.rules
        for i, r in enumerate(rules):
            sub: tuple[str | int, ...] = ("rules", i) if self.rules is not None else ()
            for side, ep in (("in", r.in_), ("out", r.out)):
                if ep.port_end is not None and ep.port_end < ep.port:
                    raise rule(
                        f"rule {i}: {side} port_end ({ep.port_end}) must be >= port ({ep.port})",
                        "make port_end at least port",
                        *sub,
                        side,
                    )
            if r.out.host is None:
                raise rule(f"rule {i}: out.host is required", "add out.host (an IPv4 address)", *sub, "out")
            span_in = (r.in_.port_end or r.in_.port) - r.in_.port
            span_out = (r.out.port_end or r.out.port) - r.out.port
            if span_in != span_out:
                raise rule(
                    f"rule {i}: in port range size ({span_in + 1}) != out port range size ({span_out + 1})",
                    "make the in and out port ranges the same size",
                    *sub,
                )
        for i, a in enumerate(rules):
            for j in range(i + 1, len(rules)):
                b = rules[j].in_
                if (
                    (a.in_.host or "0.0.0.0") == (b.host or "0.0.0.0")
                    and a.in_.port <= (b.port_end or b.port)
                    and b.port <= (a.in_.port_end or a.in_.port)
                ):
                    raise rule(f"rules {i} and {j} have overlapping in endpoints", "give each rule its own in ports")
        return self


class MappingOld(Strict):
    in_: LegacyEndpoint = Field(alias="in")
    out: LegacyEndpoint


class EndpointMatcher(Lenient):  # flatten of an untagged host match + port match: unknown keys pass
    domain: Str | None = None
    domain_regex: Str | None = None
    ip: Str | None = None
    ip_cidr: Str | None = None
    port: Port | None = None
    port_end: Port | None = None


class HttpProxy(Lenient):
    proxy_listen: Endpoint
    dst_filters: Annotated[list[EndpointMatcher], OneOrMany] = Field(
        default_factory=list, validation_alias=AliasChoices("dst_filters", "dst_filter")
    )


class Socks5Auth(Lenient):
    username: Str
    password: Str


class Socks5(Lenient):
    proxy_listen: Endpoint
    dst_filters: list[EndpointMatcher] = Field(default_factory=list)
    auth: Socks5Auth | None = None


class CaptureDst(Strict):
    host: Ipv4Cidr | None = None
    ipset: Str | None = None
    port: Port | None = None
    port_end: Port | None = None

    @model_validator(mode="after")
    def _checked(self) -> Any:
        if self.port_end is not None:
            if self.port is None:
                raise rule("`port_end` requires `port` to be specified", "add `port` (the start of the range)")
            if self.port_end < self.port:
                raise rule(f"`port_end` ({self.port_end}) must be >= `port` ({self.port})", "make port_end >= port")
        if self.host is None and self.ipset is None and self.port is None:
            raise rule("one of host, ipset, port must be specified", "add `host`, `ipset` or `port`")
        if self.host is not None and self.ipset is not None:
            raise rule("Only one of host or ipset can be specified", "keep `host` or `ipset`, not both")
        return self


def _something_captured(obj: Any) -> Any:
    if not obj.capture_dst and not obj.capture_cgroup:
        raise rule(
            "At least one of capture_dst, capture_cgroup must be set and not empty",
            'add a `capture_dst` such as {"port": 8080} (or a `capture_cgroup`)',
        )
    return obj


class IngressNetfilter(Lenient):
    capture_dst: Annotated[list[CaptureDst], OneOrMany] = Field(default_factory=list)
    capture_cgroup: list[Str] = Field(default_factory=list)
    nocapture_cgroup: list[Str] = Field(default_factory=list)
    listen_port: Port | None = None
    so_mark: U32 | None = None

    @model_validator(mode="after")
    def _captures(self) -> Any:
        return _something_captured(self)


class EgressNetfilter(Strict):
    capture_dst: Annotated[list[CaptureDst], OneOrMany] = Field(default_factory=list)
    capture_local_traffic: Bool = False
    capture_cgroup: list[Str] = Field(default_factory=list)
    nocapture_cgroup: list[Str] = Field(default_factory=list)
    listen_port: Port | None = None
    so_mark: U32 | None = None

    @model_validator(mode="after")
    def _captures(self) -> Any:
        return _something_captured(self)


class HookCaptureDst(Strict):
    host: Ipv4Cidr | None = None
    port: Port
    port_end: Port | None = None


class IngressHook(Strict):
    capture_dst: Annotated[list[HookCaptureDst], OneOrMany] = Field(default_factory=list)
    proxy_port: Port | None = None
    proxy_listen: Str | None = None
    capture_local_traffic: Bool = False


class EgressHook(Strict):
    capture_local_traffic: Bool = False
    capture_listen: Annotated[list[dict[str, Any]], OneOrMany] = Field(default_factory=list)


class MappingUdp(Strict):
    in_: Endpoint = Field(alias="in")
    out: Endpoint
    idle_timeout_secs: U64 | None = None


def _no_hook_in_launch(obj: Any, section: str) -> None:
    if getattr(obj, "hook", None) is not None:
        side = "Ingress" if section == "add_ingress" else "Egress"
        raise rule(
            f"{side} entry uses 'hook' mode, which is only allowed via `tng exec`, not `tng launch`",
            "run it with `tng exec`, or use mapping/netfilter for `tng launch`",
            "hook",
        )


class PathRewrite(Strict):
    match_regex: Str
    substitution: Str

    @field_validator("match_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as e:
            raise rule(f"Failed to compile user provided regex: {value}: {e}", "fix the regular expression") from None
        return value


HeaderSpec = Literal["all"] | list[Str]


class HeaderPassthrough(Strict):
    request_headers: HeaderSpec = Field(default_factory=list)
    response_headers: HeaderSpec = Field(default_factory=list)


class RatsTls(Strict):
    multiplex: Bool = False


class Quic(Strict):
    max_datagram_size: U64 | None = None


class Cors(Strict):
    allow_origins: list[Str] = Field(default_factory=list)
    allow_methods: list[Str] = Field(default_factory=list)
    allow_headers: list[Str] = Field(default_factory=list)
    expose_headers: list[Str] = Field(default_factory=list)
    allow_credentials: Bool = False


class KeySelf(Lenient):
    source: Literal["self_generated"]
    rotation_interval: U64


class KeyFile(Lenient):
    source: Literal["file"]
    path: Str


class KeyPeerShared(Lenient):
    source: Literal["peer_shared"]
    rotation_interval: U64
    host: Str = "0.0.0.0"
    port: Port = 8301
    peers: list[Str] = Field(default_factory=list)
    peers_file: Str | None = None
    no_ra: Bool = False
    attest: Any = None
    verify: Any = None

    @model_validator(mode="after")
    def _ra(self) -> Any:
        if self.attest is not None:
            ra_v2.check_attest(self.attest)
        if self.verify is not None:
            ra_v2.check_verify(self.verify)
        return self


KeyArgs = Annotated[KeySelf | KeyFile | KeyPeerShared, Field(discriminator="source")]


class DirectForwardRule(Strict):
    http_path: Str


class EgressOhttp(Strict):
    allow_non_tng_traffic_regexes: list[Str] | None = None
    cors: Cors | None = None
    key: KeyArgs | None = None
    header_passthrough: HeaderPassthrough | None = None


class ControlRestful(Lenient):  # serde(flatten) of an Endpoint
    host: Str | None = None
    port: Port


class ControlTtrpc(Lenient):
    path: Str


class ControlInterface(Strict):
    restful: ControlRestful | None = None
    ttrpc: ControlTtrpc | None = None


class OltpCommon(Strict):
    protocol: Literal["http/protobuf", "http/json", "grpc"]
    headers: dict[Str, Str] | None = None
    endpoint: Str


class MetricStdout(Lenient):
    type: Literal["stdout"]
    step: U64 = 60


class MetricFalcon(Lenient):
    type: Literal["falcon"]
    server_url: Str
    endpoint: Str
    tags: dict[Str, Str] = Field(default_factory=dict)
    step: U64 = 60


class MetricOltp(Lenient):
    type: Literal["oltp"]
    protocol: Literal["http/protobuf", "http/json", "grpc"]
    headers: dict[Str, Str] | None = None
    endpoint: Str
    step: U64


class Metric(Strict):
    exporters: list[Annotated[MetricStdout | MetricFalcon | MetricOltp, Field(discriminator="type")]] = Field(
        default_factory=list
    )


class TraceStdout(Strict):
    type: Literal["stdout"]


class TraceOltp(OltpCommon):
    type: Literal["oltp"]


class Trace(Strict):
    exporters: list[Annotated[TraceStdout | TraceOltp, Field(discriminator="type")]] = Field(default_factory=list)


def _ra(obj: Any, section: str) -> None:
    if obj.no_ra:
        for name in ("verify", "attest"):
            if getattr(obj, name) is not None:
                raise rule(
                    f"The 'no_ra: true' flag should not be used with '{name}' field",
                    f"remove `no_ra` or remove `{name}`",
                )
    elif obj.attest is None and obj.verify is None:
        # TNG 2.x names 'add_egress' here for ingress entries too; the message is kept as it prints it
        raise rule(
            "At least one of 'attest' and 'verify' field and '\"no_ra\": true' should be set for 'add_egress'",
            f'add `verify` (check the peer), `attest` (prove this side) or `"no_ra": true` (testing only) to this {section} entry',
        )


@functools.lru_cache(maxsize=16)
def models(version: tuple[int, int, int]) -> type[BaseModel]:
    """The top-level model of TNG ``version`` (2.x)."""
    ohttp_alias = version >= (2, 2, 5)
    new_mapping = version >= (2, 7, 0)
    mapping_t: Any = Mapping27 if new_mapping else MappingOld
    udp = ("mapping_udp",) if new_mapping else ()

    class IngressOhttp(Strict):
        path_rewrites: list[PathRewrite] = Field(default_factory=list)
        if version >= (2, 8, 0):
            path_default: Literal["root", "original"] = "root"
            tls: Bool | None = None
            tls_ca_certs: list[Str] = Field(default_factory=list)
        if version >= (2, 7, 0):
            header_passthrough: HeaderPassthrough | None = None

    class RaFields(Strict):
        no_ra: Bool = False
        attest: Any = None
        verify: Any = None
        rats_tls: RatsTls | None = None
        quic: Quic | None = None

        @field_validator("attest")
        @classmethod
        def _attest(cls, value: Any) -> Any:
            if value is not None:
                ra_v2.check_attest(value)
            return value

        @field_validator("verify")
        @classmethod
        def _verify(cls, value: Any) -> Any:
            if value is None:
                return value
            if version <= (2, 5, 0) and isinstance(value, dict) and "as_type" in value:
                raise rule(
                    f"unknown field `as_type` (TNG {'.'.join(map(str, version))} has `as_is_grpc`)",
                    'use "as_is_grpc": true/false, or a TNG newer than 2.5.0',
                    "as_type",
                )
            ra_v2.check_verify(value, remote_grpc_refused=version > (2, 5, 0))
            return value

    class Ingress(RaFields):
        mapping: mapping_t | None = None
        http_proxy: HttpProxy | None = None
        netfilter: IngressNetfilter | None = None
        socks5: Socks5 | None = None
        hook: IngressHook | None = None
        if new_mapping:
            mapping_udp: MappingUdp | None = None
        if ohttp_alias:
            ohttp: IngressOhttp | None = Field(None, validation_alias=AliasChoices("ohttp", "encap_in_http"))
        else:
            encap_in_http: IngressOhttp | None = None
        web_page_inject: Bool = False

        @model_validator(mode="after")
        def _rules(self) -> Any:
            one_of(self, ("mapping", "http_proxy", "netfilter", "socks5", "hook", *udp), "add_ingress")
            _no_hook_in_launch(self, "add_ingress")
            _ra(self, "add_ingress")
            return self

    class Egress(RaFields):
        mapping: mapping_t | None = None
        netfilter: EgressNetfilter | None = None
        hook: EgressHook | None = None
        if new_mapping:
            mapping_udp: MappingUdp | None = None
        if ohttp_alias:
            ohttp: EgressOhttp | None = Field(None, validation_alias=AliasChoices("ohttp", "decap_from_http"))
        else:
            decap_from_http: EgressOhttp | None = None
        direct_forward: list[DirectForwardRule] | None = None

        @model_validator(mode="after")
        def _rules(self) -> Any:
            one_of(self, ("mapping", "netfilter", "hook", *udp), "add_egress")
            _no_hook_in_launch(self, "add_egress")
            _ra(self, "add_egress")
            return self

    class Config(Strict):
        control_interface: ControlInterface | None = None
        metric: Metric | None = None
        trace: Trace | None = None
        add_ingress: list[Ingress] = Field(default_factory=list)
        add_egress: list[Egress] = Field(default_factory=list)
        admin_bind: Endpoint | None = None

    return Config
