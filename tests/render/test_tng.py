"""The TNG client config follows the schema and rules of the TNG version the recipe names."""

from __future__ import annotations

import json
import shlex

import pytest

from cai_tui.render import RenderError, get
from cai_tui.render.tng import TngConfigError, client_config, validate_config
from tests.render.conftest import with_answers

# CAI-6.2, verbatim from the seed's docker run line
SEED_CONFIG = {
    "add_ingress": [
        {
            "http_proxy": {"proxy_listen": {"host": "127.0.0.1", "port": 41000}},
            "verify": {
                "as_addr": "http://alb-xxxxxxxxxxxxxxxxxx.cn-shanghai.alb.aliyuncsslb.com/cai-test/as/",
                "policy_ids": ["default"],
            },
        }
    ]
}
VERIFY = {"as_addr": "http://t/as/", "policy_ids": ["default"]}
PROXY = {"proxy_listen": {"host": "127.0.0.1", "port": 41000}}


def messages(config: dict, version: str) -> list[str]:
    with pytest.raises(TngConfigError) as info:
        validate_config(config, version)
    return info.value.messages


def test_seed_config_validates_on_1_0_3() -> None:
    validate_config(SEED_CONFIG, "1.0.3")


def test_unknown_field_is_refused_like_serde_deny_unknown_fields() -> None:
    cfg = {"add_ingress": [{"http_proxy": PROXY, "verify": VERIFY, "verfy": {}}]}
    assert messages(cfg, "1.0.3") == [
        "add_ingress[0].verfy: unknown field `verfy`, expected one of `mapping`, `http_proxy`, `netfilter`, "
        "`encap_in_http`, `web_page_inject`, `no_ra`, `attest`, `verify`"
    ]
    nested = {"add_ingress": [{"http_proxy": {**PROXY, "listen": 1}, "verify": VERIFY}]}
    assert messages(nested, "1.0.3") == [
        "add_ingress[0].http_proxy.listen: unknown field `listen`, expected `proxy_listen` or `dst_filters`"
    ]
    assert messages({"add_ingres": []}, "1.0.3") == [
        "add_ingres: unknown field `add_ingres`, expected one of `admin_bind`, `add_ingress`, `add_egress`"
    ]


def test_no_ra_with_verify_is_refused_with_tngs_message() -> None:
    cfg = {"add_ingress": [{"http_proxy": PROXY, "no_ra": True, "verify": VERIFY}]}
    assert messages(cfg, "1.0.3") == ["add_ingress[0]: The 'no_ra: true' flag should not be used with 'verify' field"]


@pytest.mark.parametrize("section", ["add_ingress", "add_egress"])
def test_missing_attest_verify_no_ra_is_refused(section: str) -> None:
    entry = {"http_proxy": PROXY} if section == "add_ingress" else {"mapping": {"in": {"port": 1}, "out": {"port": 2}}}
    expected = (
        f"{section}[0]: At least one of 'attest' and 'verify' field and '\"no_ra\": true' should be set for '{section}'"
    )
    assert messages({section: [entry]}, "1.0.3") == [expected]
    validate_config({section: [{**entry, "no_ra": True}]}, "1.0.3")
    validate_config({section: [{**entry, "attest": {"aa_addr": "unix:///run/aa.sock"}}]}, "1.0.3")


def test_versions_differ_where_tng_changed() -> None:
    with_as_type = {"add_ingress": [{"http_proxy": PROXY, "verify": {**VERIFY, "as_type": "restful"}}]}
    assert "unknown field `as_type`" in messages(with_as_type, "1.0.3")[0]
    validate_config(with_as_type, "2.6.0")
    with_grpc_flag = {"add_ingress": [{"http_proxy": PROXY, "verify": {**VERIFY, "as_is_grpc": False}}]}
    validate_config(with_grpc_flag, "1.0.3")
    # 2.x reads verify as flattened tagged variants: serde ignores the old flag there instead of refusing it
    validate_config(with_grpc_flag, "2.6.0")
    assert "unknown field `as_type`" in messages(with_as_type, "2.5.0")[0]
    certs = {"add_ingress": [{"http_proxy": PROXY, "verify": {**VERIFY, "trusted_certs_paths": ["/ca.pem"]}}]}
    assert "unknown field `trusted_certs_paths`" in messages(certs, "1.0.3")[0]
    validate_config(certs, "1.0.6")
    web = {"add_ingress": [{"http_proxy": PROXY, "verify": VERIFY, "web_page_inject": True}]}
    validate_config(web, "1.0.3")
    validate_config(web, "2.6.0")
    ohttp = {"add_ingress": [{"http_proxy": PROXY, "verify": VERIFY, "ohttp": {"path_rewrites": []}}]}
    assert "unknown field `ohttp`" in messages(ohttp, "2.2.4")[0]
    validate_config(ohttp, "2.2.5")


def test_generated_config_per_version(cai_full) -> None:
    v1 = client_config(cai_full)
    assert v1["add_ingress"][0]["verify"] == {
        "as_addr": "http://alb-example.cn-hangzhou.alb.aliyuncsslb.com/trustee/as/",
        "policy_ids": ["default"],
    }
    v2 = client_config(with_answers(cai_full, {"tng": {"version": "2.6.0"}}))
    assert v2["add_ingress"][0]["verify"]["as_type"] == "restful"
    text = get("tng-client").render(with_answers(cai_full, {"tng": {"version": "2.6.0"}})).text
    assert "/tng:2.6.0" in text


def test_rendered_line_carries_the_config_as_one_argument(cai_full) -> None:
    text = get("tng-client").render(cai_full).text
    words = shlex.split(text.split("set -euo pipefail\n", 1)[1].replace(" \\\n", " "))
    assert words[-2] == "--config-content"
    config = json.loads(words[-1])
    validate_config(config, "1.0.3")
    assert config["add_ingress"][0]["http_proxy"] == PROXY


def test_unsupported_version_is_refused(cai_full) -> None:
    with pytest.raises(RenderError, match=r"supported: 1\.0\.x and 2\.x"):
        get("tng-client").render(with_answers(cai_full, {"tng": {"version": "3.0.0"}}))
