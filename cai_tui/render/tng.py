"""CAI-6.2: the TNG client configuration, for the TNG version the recipe names, and its ``docker run`` line.

The schema is TNG's own (src/config/*.rs): every object rejects unknown fields (serde ``deny_unknown_fields``),
and the program's rules are checked with its own messages. Versions:

- 1.0.x: ``add_ingress``/``add_egress``/``admin_bind``; ``verify {as_addr, policy_ids, as_is_grpc}``
  (``trusted_certs_paths`` from 1.0.6); ``encap_in_http``/``decap_from_http``.
- 2.x: Envoy is gone (same config keys); from 2.2.5 ``ohttp`` is accepted for
  ``encap_in_http``/``decap_from_http``; after 2.5.0 ``as_is_grpc`` became ``as_type``.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..recipe import CaiRecipe
from .base import Prompter, Rendered, Renderer, RenderError
from .shell import multiline, script

SUPPORTED = "1.0.x and 2.x"


class TngConfigError(ValueError):
    """A configuration TNG would refuse; ``messages`` are in TNG's (serde's) own words."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def parse_version(text: str) -> tuple[int, int, int]:
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text.strip())
    if not m:
        raise RenderError(f"answers.tng.version {text!r} is not a version like 1.0.3")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


# --- 1.0.x ------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Endpoint(_Strict):
    host: str | None = None
    port: int = Field(ge=0, le=65535)


class Mapping(_Strict):
    in_: Endpoint = Field(alias="in")
    out: Endpoint


class DstFilter(_Strict):
    domain: str | None = None
    port: int | None = None


class HttpProxy(_Strict):
    proxy_listen: Endpoint
    dst_filters: list[DstFilter] | None = Field(None, alias="dst_filters")


class IngressNetfilter(_Strict):
    dst: Endpoint


class EgressNetfilter(_Strict):
    capture_dst: Endpoint
    capture_local_traffic: bool | None = None
    listen_port: int | None = None
    so_mark: int | None = None


class PathRewrite(_Strict):
    match_regex: str
    substitution: str


class EncapInHttp(_Strict):
    path_rewrites: list[PathRewrite] = Field(default_factory=list)


class DecapFromHttp(_Strict):
    allow_non_tng_traffic_regexes: list[str] | None = None


class Attest(_Strict):
    aa_addr: str


class Verify10(_Strict):
    as_addr: str
    policy_ids: list[str]
    as_is_grpc: bool | None = None


class Verify106(Verify10):
    trusted_certs_paths: list[str] | None = None


class Verify25(_Strict):
    """After 2.5.0: ``as_type`` replaces ``as_is_grpc``."""

    as_addr: str
    policy_ids: list[str]
    as_type: Literal["grpc", "restful", "builtin"] | None = None
    trusted_certs_paths: list[str] | None = None


def _ra_rule(obj: Any, section: str) -> None:
    if obj.no_ra and obj.verify is not None:
        raise ValueError("The 'no_ra: true' flag should not be used with 'verify' field")
    if not obj.no_ra and obj.attest is None and obj.verify is None:
        raise ValueError(
            f"At least one of 'attest' and 'verify' field and '\"no_ra\": true' should be set for '{section}'"
        )


def _one_of(obj: Any, names: tuple[str, ...], section: str) -> None:
    present = [n for n in names if getattr(obj, n, None) is not None]
    if len(present) != 1:
        raise ValueError(f"each '{section}' entry needs exactly one of {', '.join(names)} (got {len(present)})")


@functools.lru_cache(maxsize=16)
def _models(version: tuple[int, int, int]) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    """(Config, Ingress, Egress) models for ``version``."""
    major = version[0]
    if major == 1:
        verify_t: type[BaseModel] = Verify106 if version >= (1, 0, 6) else Verify10
    else:
        verify_t = Verify25 if version > (2, 5, 0) else Verify106
    ohttp = version >= (2, 2, 5)

    if major == 1:

        class Ingress(_Strict):
            mapping: Mapping | None = None
            http_proxy: HttpProxy | None = None
            netfilter: IngressNetfilter | None = None
            encap_in_http: EncapInHttp | None = None
            web_page_inject: bool | None = None
            no_ra: bool = False
            attest: Attest | None = None
            verify: verify_t | None = None  # type: ignore[valid-type]

            @model_validator(mode="after")
            def _rules(self) -> Any:
                _one_of(self, ("mapping", "http_proxy", "netfilter"), "add_ingress")
                _ra_rule(self, "add_ingress")
                return self

        class Egress(_Strict):
            mapping: Mapping | None = None
            netfilter: EgressNetfilter | None = None
            decap_from_http: DecapFromHttp | None = None
            no_ra: bool = False
            attest: Attest | None = None
            verify: verify_t | None = None  # type: ignore[valid-type]

            @model_validator(mode="after")
            def _rules(self) -> Any:
                _one_of(self, ("mapping", "netfilter"), "add_egress")
                _ra_rule(self, "add_egress")
                return self

    else:
        # from 2.2.5 ``ohttp`` is accepted in place of encap_in_http / decap_from_http
        names_in = AliasChoices("ohttp", "encap_in_http") if ohttp else None
        names_out = AliasChoices("ohttp", "decap_from_http") if ohttp else None

        class Ingress(_Strict):  # type: ignore[no-redef]
            mapping: Mapping | None = None
            http_proxy: HttpProxy | None = None
            netfilter: IngressNetfilter | None = None
            encap_in_http: EncapInHttp | None = Field(None, validation_alias=names_in)
            web_page_inject: bool | None = None
            no_ra: bool = False
            attest: Attest | None = None
            verify: verify_t | None = None  # type: ignore[valid-type]

            @model_validator(mode="after")
            def _rules(self) -> Any:
                _one_of(self, ("mapping", "http_proxy", "netfilter"), "add_ingress")
                _ra_rule(self, "add_ingress")
                return self

        class Egress(_Strict):  # type: ignore[no-redef]
            mapping: Mapping | None = None
            netfilter: EgressNetfilter | None = None
            decap_from_http: DecapFromHttp | None = Field(None, validation_alias=names_out)
            no_ra: bool = False
            attest: Attest | None = None
            verify: verify_t | None = None  # type: ignore[valid-type]

            @model_validator(mode="after")
            def _rules(self) -> Any:
                _one_of(self, ("mapping", "netfilter"), "add_egress")
                _ra_rule(self, "add_egress")
                return self

    class AdminBind(_Strict):
        host: str | None = None
        port: int

    class Config(_Strict):
        admin_bind: AdminBind | None = None
        add_ingress: list[Ingress] = Field(default_factory=list)
        add_egress: list[Egress] = Field(default_factory=list)

    return Config, Ingress, Egress


def _serde_expected(names: list[str]) -> str:
    ticks = [f"`{n}`" for n in names]
    if not ticks:
        return "there are no fields"
    if len(ticks) == 1:
        return f"expected {ticks[0]}"
    if len(ticks) == 2:
        return f"expected {ticks[0]} or {ticks[1]}"
    return "expected one of " + ", ".join(ticks)


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the object at ``loc`` (the parent of an unknown key)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        ann = field.annotation
        model = _inner_model(ann)
        if model is None:
            return None
    return model


def _inner_model(ann: Any) -> Any:
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_config(config: dict[str, Any], version: str) -> None:
    """Raise :class:`TngConfigError` with TNG's messages when ``version`` of TNG would refuse ``config``."""
    v = parse_version(version)
    if v[0] not in (1, 2) or (v[0] == 1 and v[1] != 0):
        raise RenderError(f"TNG {version} is not supported here (supported: {SUPPORTED})")
    config_model, _, _ = _models(v)
    try:
        config_model.model_validate(config)
    except ValidationError as e:
        messages = []
        for err in e.errors():
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                owner = _model_at(config_model, loc[:-1])
                names = [f.alias or n for n, f in owner.model_fields.items()] if owner else []
                msg = f"unknown field `{loc[-1]}`, {_serde_expected(names)}"
            elif err["type"] == "missing":
                msg = f"missing field `{loc[-1]}`"
            elif err["type"] == "value_error":
                msg = str(err["msg"]).removeprefix("Value error, ")
            else:
                msg = str(err["msg"])
            where = _where(tuple(p for p in loc if err["type"] != "extra_forbidden" or p != loc[-1]))
            messages.append(f"{where}: {msg}" if where else msg)
        raise TngConfigError(messages) from None


def client_config(recipe: CaiRecipe) -> dict[str, Any]:
    """The seed's client: an HTTP CONNECT proxy whose peers are verified by Trustee's AS."""
    a = recipe.answers
    url = a.trustee.url
    if not url:
        raise RenderError("answers.trustee.url is not set; TNG verifies the instance through <trustee url>/as/")
    v = parse_version(a.tng.version)
    verify: dict[str, Any] = {"as_addr": url.rstrip("/") + "/as/", "policy_ids": [a.trustee.policy]}
    if v[0] == 2 and v > (2, 5, 0):
        verify["as_type"] = "restful"
    return {
        "add_ingress": [
            {
                "http_proxy": {"proxy_listen": {"host": a.tng.proxy_host, "port": a.tng.proxy_port}},
                "verify": verify,
            }
        ]
    }


class TngClient(Renderer):
    kind = "tng-client"
    title = "TNG client: config for the recipe's TNG version and its docker run line (CAI-6.2)"
    flow = "cai"
    default_path = "~/tng-client.sh"
    mode = 0o755

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        self._check_flow(recipe)
        t = recipe.answers.tng
        config = client_config(recipe)
        try:
            validate_config(config, t.version)
        except TngConfigError as e:
            raise RenderError(f"the generated TNG {t.version} config is invalid: {e}") from None
        content = json.dumps(config, indent=4, ensure_ascii=False)
        body = multiline(
            ["docker", "run", "--rm"],
            ["--network=host"],
            [f"{t.image}:{t.version}"],
            ["tng", "launch", "--config-content", content],
        )
        proxy = f"http://{t.proxy_host}:{t.proxy_port}"
        text = script(
            [body],
            header=[
                f"CAI-6.2: TNG {t.version} client (schema checked for this version). It stays in the foreground,",
                f"serving an HTTP CONNECT proxy on {t.proxy_host}:{t.proxy_port}. In another terminal (CAI-6.3):",
                f"  export all_proxy={proxy}",
            ],
        )
        return self.done(text)
