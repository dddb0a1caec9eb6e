"""Field validation: each error names the field, shows the bad value (never a secret's) and what is expected."""

import socket

import pytest

from cai_tui.recipe import RecipeError, loads_recipe
from cai_tui.recipe.checks_here import host_problems, ipv4_routes, subnet_overlaps
from cai_tui.recipe.types import parse_bdf, parse_bucket_path, parse_kbs_uri

CAI = """schema_version: 1
flow: cai
name: t
answers:
  oss:
    bucket_path: my-bucket:/models/
{extra}"""

KATA = """schema_version: 1
flow: kata-virtcca
name: k
answers:
{extra}"""


def problems(text):
    with pytest.raises(RecipeError) as e:
        loads_recipe(text, "r.yaml")
    return [str(p) for p in e.value.problems]


def one(text):
    ps = problems(text)
    assert len(ps) == 1, ps
    return ps[0]


@pytest.mark.parametrize(
    ("section", "yaml", "field", "expect"),
    [
        (
            "trustee",
            "model_key_id: kbs:///default/model",
            "answers.trustee.model_key_id",
            "kbs:///<repository>/<type>/<tag>",
        ),
        ("trustee", "url: alb-x.example/trustee", "answers.trustee.url", "scheme"),
        ("trustee", "url: ftp://alb-x.example/", "answers.trustee.url", "scheme"),
        ("instance", "type: ecs.gn7i.large", "answers.instance.type", "ecs.gn8v-tee.4xlarge or ecs.gn8v-tee.6xlarge"),
        ("service", "port: 0", "answers.service.port", "1–65535"),
        ("service", "port: 65536", "answers.service.port", "1–65535"),
        ("service", "port: true", "answers.service.port", "1–65535"),
        ("service", "sharing_peers: [172.30.0.300]", "answers.service.sharing_peers[0]", "IP address"),
        ("tng", "proxy_port: -1", "answers.tng.proxy_port", "1–65535"),
        ("kms", "instance_id: kms-123", "answers.kms.instance_id", "kst-"),
        ("model", "sam: {key_id: short}", "answers.model.sam.key_id", "8–48 bytes"),
        ("model", "sam: {key_id: 'has space in it'}", "answers.model.sam.key_id", "letters, digits"),
        ("model", "encryption_method: aes", "answers.model.encryption_method", "'gocryptfs' or 'sam'"),
        ("model", "source: local", "answers.model", "local_dir"),
        ("oss", "endpoint: oss-cn-beijing.aliyuncs.com", "answers.oss.endpoint", "scheme"),
    ],
)
def test_cai_field_messages(section, yaml, field, expect):
    if section == "oss":
        text = CAI.format(extra="").replace(
            "    bucket_path: my-bucket:/models/\n", f"    bucket_path: my-bucket:/models/\n    {yaml}\n"
        )
    else:
        text = CAI.format(extra=f"  {section}:\n    {yaml}\n")
    line = one(text)
    assert f": {field}: " in line, line
    assert expect in line, line
    assert line.startswith("r.yaml:")


@pytest.mark.parametrize(
    "bucket_path",
    ["my_bucket:/x", "ab:/x", "bucket/x", "-bucket:/x", "bucket-:/x", "Bucket:/x", "bucket:x", "a" * 64 + ":/x"],
)
def test_bucket_path_message(bucket_path):
    line = one(CAI.format(extra="").replace("my-bucket:/models/", f"'{bucket_path}'"))
    assert "answers.oss.bucket_path" in line
    assert "bucket path must be <bucket>:/<path>; bucket names are 3–63 of a-z 0-9 -" in line


@pytest.mark.parametrize(
    ("yaml", "field", "expect"),
    [
        ("gpu: {bdf: '0000:81:00'}", "answers.gpu.bdf", "DDDD:BB:SS.F"),
        ("gpu: {bdf: '0000:81:20.0'}", "answers.gpu.bdf", "DDDD:BB:SS.F"),
        ("cni: {subnet: 8.8.8.0/24}", "answers.cni.subnet", "private"),
        ("cni: {subnet: 10.88.0.1/16}", "answers.cni.subnet", "host bits"),
        ("cni: {subnet: 10.88.0.0/31}", "answers.cni.subnet", "too small"),
        ("cni: {bridge: averyveryverylongbridge}", "answers.cni.bridge", "pattern"),
        ("serve: {gpu_memory_utilization: 0}", "answers.serve.gpu_memory_utilization", "at most 1"),
        ("serve: {gpu_memory_utilization: many}", "answers.serve.gpu_memory_utilization", "between 0 and 1"),
        ("host: {arch: x86_64}", "answers.host.arch", "aarch64"),
        ("rootfs: {image: rootfs.img}", "answers.rootfs.image", "absolute path"),
    ],
)
def test_kata_field_messages(yaml, field, expect):
    line = one(KATA.format(extra=f"  {yaml}\n"))
    assert f": {field}: " in line, line
    assert expect in line, line


def test_hook_must_sit_under_guest_hook_path():
    line = one(KATA.format(extra="  driver: {hook_path: /opt/hooks/prestart/x.sh}\n"))
    assert "guest_hook_path" in line


def test_unknown_target_role_and_bad_uri():
    ps = problems(CAI.format(extra="") + "targets:\n  instanse: local\n  client: ssh//root@host\n")
    joined = "\n".join(ps)
    assert "targets.instanse: unknown key 'instanse'; did you mean 'instance'?" in joined
    assert "targets.client" in joined and "ssh://user@host" in joined


def test_parsers():
    assert parse_kbs_uri("kbs:///default/aliyun/model-decryption-key") == ("default", "aliyun", "model-decryption-key")
    assert parse_kbs_uri("kbs://host:8080/a/b/c") == ("a", "b", "c")
    with pytest.raises(ValueError):
        parse_kbs_uri("kbs:///a//c")
    assert parse_bucket_path("conf-ai:/qwen2.5-3b-gocryptfs/") == ("conf-ai", "qwen2.5-3b-gocryptfs/")
    assert parse_bdf("00000000:00:06.0") == "0000:00:06.0"
    assert parse_bdf("81:00.0") == "0000:81:00.0"
    assert parse_bdf("0000:8A:1F.7") == "0000:8a:1f.7"


def test_subnet_overlap_against_routes():
    import ipaddress

    routes = [("eth0", ipaddress.IPv4Network("10.88.0.0/24")), ("cni0", ipaddress.IPv4Network("10.99.0.0/16"))]
    assert subnet_overlaps("10.88.0.0/16", routes) == "10.88.0.0/24 on eth0"
    assert subnet_overlaps("10.99.0.0/16", routes, own_bridge="cni0") is None
    assert subnet_overlaps("192.168.77.0/24", routes) is None


ROUTE_TABLE = """Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT
eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""


def test_route_table_parsing_and_here_check(tmp_path):
    f = tmp_path / "route"
    f.write_text(ROUTE_TABLE)
    routes = ipv4_routes(f)
    assert [(i, str(n)) for i, n in routes] == [("eth0", "192.168.2.0/24"), ("docker0", "172.17.0.0/16")]
    loaded = loads_recipe(KATA.format(extra="  cni: {subnet: 172.17.0.0/20}\n"), "k.yaml")
    found = [str(p) for p in host_problems(loaded, routes=routes)]
    assert found == [
        "k.yaml: answers.cni.subnet: 172.17.0.0/20 overlaps an existing route (172.17.0.0/16 on docker0); pick another private range"
    ]
    assert host_problems(loads_recipe(KATA.format(extra="  cni: {subnet: 10.88.0.0/16}\n")), routes=routes) == []


def test_tng_proxy_port_in_use_is_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        loaded = loads_recipe(CAI.format(extra=f"  tng:\n    proxy_port: {port}\n"))
        found = [str(p) for p in host_problems(loaded)]
        assert any("answers.tng.proxy_port" in p and "already in use" in p for p in found), found
    assert host_problems(loads_recipe(CAI.format(extra=f"  tng:\n    proxy_port: {port}\n"))) == []
