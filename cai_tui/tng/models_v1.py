"""TNG 1.0.x configuration (src/config/*.rs at v1.0.3 and v1.0.6): every object denies unknown fields.

1.0.6 adds ``verify.trusted_certs_paths`` and the top-level ``control_interface`` and ``metric``."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .rules import U64, Bool, Port, Str, rule


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Endpoint(Strict):
    host: Str | None = None
    port: Port


class Mapping(Strict):
    in_: Endpoint = Field(alias="in")
    out: Endpoint


class DstFilter(Strict):
    domain: Str | None = None
    port: Port | None = None


class HttpProxy(Strict):
    proxy_listen: Endpoint
    dst_filters: list[DstFilter] | None = None


class IngressNetfilter(Strict):
    dst: Endpoint


class EgressNetfilter(Strict):
    capture_dst: Endpoint
    capture_local_traffic: Bool | None = None
    listen_port: Port | None = None
    so_mark: Annotated[int, Field(ge=0)] | None = None


class PathRewrite(Strict):
    match_regex: Str
    substitution: Str


class EncapInHttp(Strict):
    path_rewrites: list[PathRewrite] = Field(default_factory=list)


class DecapFromHttp(Strict):
    allow_non_tng_traffic_regexes: list[Str] | None = None


class Attest(Strict):
    aa_addr: Str


class Verify10(Strict):
    as_addr: Str
    policy_ids: list[Str]
    as_is_grpc: Bool | None = None


class Verify106(Verify10):
    trusted_certs_paths: list[Str] | None = None


class RestfulArgs(BaseModel):  # serde(flatten) of an Endpoint: unknown fields pass
    host: Str | None = None
    port: Port


class TtrpcArgs(BaseModel):
    path: Str


class ControlInterface(Strict):
    restful: RestfulArgs | None = None
    ttrpc: TtrpcArgs | None = None


class StdoutExporter(BaseModel):
    type: Literal["stdout"]
    step: U64 | None = None


class FalconExporter(BaseModel):
    type: Literal["falcon"]
    server_url: Str
    endpoint: Str
    tags: dict[Str, Str] | None = None
    step: U64 | None = None


class Metric(Strict):
    exporters: list[Annotated[StdoutExporter | FalconExporter, Field(discriminator="type")]] = Field(
        default_factory=list
    )


def ra_rule(obj: Any, section: str) -> None:
    if obj.no_ra and obj.verify is not None:
        raise rule(
            "The 'no_ra: true' flag should not be used with 'verify' field",
            "remove `no_ra` (verification needs attestation) or remove `verify`",
        )
    if not obj.no_ra and obj.attest is None and obj.verify is None:
        raise rule(
            f"At least one of 'attest' and 'verify' field and '\"no_ra\": true' should be set for '{section}'",
            'add `verify` (check the peer), `attest` (prove this side) or `"no_ra": true` (testing only)',
        )


def one_of(obj: Any, names: tuple[str, ...], section: str) -> None:
    present = [n for n in names if getattr(obj, n, None) is not None]
    if len(present) != 1:
        raise rule(
            f"each '{section}' entry needs exactly one of {', '.join(names)} (got {len(present)})",
            f"keep exactly one of {', '.join(f'`{n}`' for n in names)} in this entry",
        )


@functools.lru_cache(maxsize=4)
def models(version: tuple[int, int, int]) -> type[BaseModel]:
    """The top-level model of TNG ``version`` (1.0.x)."""
    v106 = version >= (1, 0, 6)
    verify_t: Any = Verify106 if v106 else Verify10

    class Ingress(Strict):
        mapping: Mapping | None = None
        http_proxy: HttpProxy | None = None
        netfilter: IngressNetfilter | None = None
        encap_in_http: EncapInHttp | None = None
        web_page_inject: Bool | None = None
        no_ra: Bool = False
        attest: Attest | None = None
        verify: verify_t | None = None

        @model_validator(mode="after")
        def _rules(self) -> Any:
            one_of(self, ("mapping", "http_proxy", "netfilter"), "add_ingress")
            ra_rule(self, "add_ingress")
            return self

    class Egress(Strict):
        mapping: Mapping | None = None
        netfilter: EgressNetfilter | None = None
        decap_from_http: DecapFromHttp | None = None
        no_ra: Bool = False
        attest: Attest | None = None
        verify: verify_t | None = None

        @model_validator(mode="after")
        def _rules(self) -> Any:
            one_of(self, ("mapping", "netfilter"), "add_egress")
            ra_rule(self, "add_egress")
            return self

    if v106:

        class Config(Strict):
            control_interface: ControlInterface | None = None
            metric: Metric | None = None
            add_ingress: list[Ingress] = Field(default_factory=list)
            add_egress: list[Egress] = Field(default_factory=list)
            admin_bind: Endpoint | None = None

        return Config

    class Config103(Strict):
        admin_bind: Endpoint | None = None
        add_ingress: list[Ingress] = Field(default_factory=list)
        add_egress: list[Egress] = Field(default_factory=list)

    return Config103
