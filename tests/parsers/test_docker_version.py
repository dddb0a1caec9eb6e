"""docker version / docker compose version parsers and the version helpers."""

import pytest

from cai_tui.parsers import docker_version as dv
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import capture, fixture


def test_real_capture_docker_missing():
    c = capture("docker-version.txt")
    assert c.rc == 127
    with pytest.raises(ParseError, match=r"docker is not installed.*line 1: 'sh: 1: docker: not found'"):
        dv.parse_docker_version(c.body)
    with pytest.raises(ParseError, match="Docker Compose is not installed"):
        dv.parse_compose_version(c.body)


def test_plain_community():
    v = dv.parse_docker_version(fixture("docker-version-community.txt").body)
    assert v == dv.DockerVersion(
        client_version="24.0.5",
        client_api_version="1.43",
        client_platform="Docker Engine - Community",
        server_version="24.0.5",
        server_api_version="1.43",
        server_min_api_version="1.12",
        server_platform="Docker Engine - Community",
    )
    assert v.newer_than("19.03") and not v.newer_than("24.0.5")


def test_plain_debian_docker_io():
    v = dv.parse_docker_version(fixture("docker-version-debian.txt").body)
    assert (v.client_version, v.server_version, v.client_platform, v.server_platform) == (
        "20.10.24+dfsg1",
        "20.10.24+dfsg1",
        None,
        None,
    )
    assert (v.server_api_version, v.server_min_api_version, v.server_error) == ("1.41", "1.12", None)
    assert v.newer_than("19.03")


def test_plain_without_daemon():
    v = dv.parse_docker_version(fixture("docker-version-nodaemon.txt").body)
    assert v.client_version == "20.10.24+dfsg1" and v.server_version is None
    assert v.server_error is not None and v.server_error.startswith("permission denied while trying to connect")
    assert v.engine_version == "20.10.24+dfsg1"


def test_plain_podman_shape_unindented():
    text = "Client:       Podman Engine\nVersion:      4.9.3\nAPI Version:  4.9.3\nGo Version:   go1.22.2\n"
    v = dv.parse_docker_version(text)
    assert (v.client_platform, v.client_version, v.client_api_version, v.server_version) == (
        "Podman Engine",
        "4.9.3",
        "4.9.3",
        None,
    )


def test_json():
    v = dv.parse_docker_version(fixture("docker-version-json.txt").body)
    assert (v.client_version, v.client_api_version, v.client_platform) == (
        "19.03.6",
        "1.40",
        "Docker Engine - Community",
    )
    assert (v.server_version, v.server_api_version, v.server_min_api_version) == ("19.03.6", "1.40", "1.12")
    assert v.newer_than("19.03") and not v.newer_than("19.03.6")


def test_json_without_server_and_with_the_error_line():
    v = dv.parse_docker_version(fixture("docker-version-json-noserver.txt").body)
    assert (v.client_version, v.client_api_version, v.client_platform) == ("29.8.1", "1.56", None)
    assert v.server_version is None
    assert (
        v.server_error
        == "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    )
    error_first = (
        "Cannot connect to the Docker daemon at unix:///x. Is the docker daemon running?\n"
        + '{"Client":{"Version":"27.3.1"},"Server":null}\n'
    )
    assert dv.parse_docker_version(error_first).server_error.startswith("Cannot connect")


def test_json_pretty_printed_over_several_lines():
    v = dv.parse_docker_version('{\n  "Client": {"Version": "27.3.1", "ApiVersion": "1.47"},\n  "Server": null\n}\n')
    assert (v.client_version, v.client_api_version) == ("27.3.1", "1.47")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected 'docker version' output"),
        ('{"Server": {}}', "'Client' object"),
        ('{"Client": {"Version": 27}}', "Client.Version is not a string"),
        ('{"Client": {}, "Server": "up"}', "'Server' is neither"),
        ('{"Client": {}}\nsomething else\n', "line 2: 'something else'"),
    ],
)
def test_json_errors(text, message):
    with pytest.raises(ParseError, match=message):
        dv.parse_docker_version(text)


def test_plain_errors():
    with pytest.raises(ParseError, match="line 1: 'hello'"):
        dv.parse_docker_version("hello\n")
    with pytest.raises(ParseError, match="empty"):
        dv.parse_docker_version("")


def test_compose_v2():
    cv = dv.parse_compose_version(fixture("compose-v2.txt").body)
    assert cv == dv.ComposeVersion(version="2.29.1", build=None, v1=False)
    assert cv.major == 2 and cv.supports_include and dv.compose_supports_include(cv)


def test_compose_v1_with_its_extra_lines():
    cv = dv.parse_compose_version(fixture("compose-v1.txt").body)
    assert cv == dv.ComposeVersion(version="1.29.2", build="5becea4c", v1=True)
    assert cv.major == 1 and not cv.supports_include


def test_compose_old_v2_and_short_form():
    assert not dv.compose_supports_include(fixture("compose-v2-old.txt").body)
    assert dv.parse_compose_version("2.20.0\n") == dv.ComposeVersion("2.20.0", None, False)
    assert dv.compose_supports_include("v2.20.0")
    assert not dv.compose_supports_include("Docker Compose version 2.19.1")
    assert dv.parse_compose_version("docker-compose version 1.25.0, build unknown\n").build == "unknown"


def test_compose_errors():
    with pytest.raises(ParseError, match="line 2"):
        dv.parse_compose_version("Docker Compose version v2.29.1\ndocker-py version: 5.0.0\n")  # v1-only extra line
    with pytest.raises(ParseError, match="not installed"):
        dv.parse_compose_version("docker: 'compose' is not a docker command.\nSee 'docker --help'\n")
    with pytest.raises(ParseError, match="empty"):
        dv.parse_compose_version("\n")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("20.10.24+dfsg1", (20, 10, 24)),
        ("v2.29.1", (2, 29, 1)),
        ("19.03", (19, 3)),
        ("1.0.0-rc92", (1, 0, 0)),
        ("2.24.6+ds1-0ubuntu1~22.04.1", (2, 24, 6)),
        ("27", (27,)),
    ],
)
def test_version_tuple(version, expected):
    assert dv.version_tuple(version) == expected


@pytest.mark.parametrize("version", ["", "latest", "v", "1..2", "x1.2"])
def test_version_tuple_rejects(version):
    with pytest.raises(ParseError, match="not a version number"):
        dv.version_tuple(version)


def test_comparisons():
    assert dv.version_newer_than("20.10.24+dfsg1", "19.03")
    assert not dv.version_newer_than("19.03.0", "19.03")
    assert not dv.version_newer_than("18.09.7", "19.03")
    assert dv.version_at_least("2.20", "2.20.0") and not dv.version_at_least("2.19.99", "2.20")
