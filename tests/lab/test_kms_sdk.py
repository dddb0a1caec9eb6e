"""The lab KMS against the real alibabacloud-kms20160120 SDK, in both signature styles."""

from __future__ import annotations

import base64
import json
import stat
import threading
import time
from datetime import datetime, timezone

import pytest
from alibabacloud_kms20160120 import models as kms_models
from alibabacloud_tea_openapi.exceptions import ServerException
from darabonba.exceptions import UnretryableException

try:  # tests/lab as a package or as a plain directory on sys.path
    from .conftest_kms import SK, STYLES, KmsEnv, expect_error, kms_env, loopback_only
except ImportError:
    from conftest_kms import SK, STYLES, KmsEnv, expect_error, kms_env, loopback_only  # noqa: F401


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def _create(client, name: str, data: str = "s3cret", version: str = "v1", **kw):
    return client.create_secret(
        kms_models.CreateSecretRequest(secret_name=name, secret_data=data, version_id=version, **kw)
    ).body


def _get(client, name: str, **kw):
    return client.get_secret_value(kms_models.GetSecretValueRequest(secret_name=name, **kw)).body


@pytest.mark.parametrize("algorithm", STYLES)
def test_secret_lifecycle_round_trip(kms_env: KmsEnv, algorithm: str | None) -> None:
    c = kms_env.client(algorithm=algorithm)
    data = "pa ss+w/rd&=~%é中"  # characters every encoding step must carry intact
    created = _create(
        c,
        "cai/model-key",
        data,
        description="model decryption key",
        tags=json.dumps([{"TagKey": "team", "TagValue": "cai"}]),
        encryption_key_id="key-lab",
    )
    assert created.secret_name == "cai/model-key"
    assert created.version_id == "v1"
    assert created.secret_type == "Generic"
    assert created.arn == "acs:kms:cn-lab:1000000000000000:secret/cai/model-key"
    assert created.dkmsinstance_id == kms_env.lab.instance_id

    got = _get(c, "cai/model-key")
    assert (got.secret_data, got.secret_data_type, got.version_id) == (data, "text", "v1")
    assert got.version_stages.version_stage == ["ACSCurrent"]
    assert abs(_ts(got.create_time) - time.time()) < 60

    desc = c.describe_secret(kms_models.DescribeSecretRequest(secret_name="cai/model-key", fetch_tags="true")).body
    assert desc.description == "model decryption key"
    assert desc.encryption_key_id == "key-lab"
    assert desc.planned_delete_time is None
    assert [(t.tag_key, t.tag_value) for t in desc.tags.tag] == [("team", "cai")]
    # the ARN names the secret as well as its name does
    assert _get(c, created.arn).secret_data == data

    put = c.put_secret_value(
        kms_models.PutSecretValueRequest(secret_name="cai/model-key", secret_data="second", version_id="v2")
    ).body
    assert (put.version_id, put.version_stages.version_stage) == ("v2", ["ACSCurrent"])
    assert _get(c, "cai/model-key").secret_data == "second"
    previous = _get(c, "cai/model-key", version_stage="ACSPrevious")
    assert (previous.version_id, previous.secret_data) == ("v1", data)
    assert _get(c, "cai/model-key", version_id="v1").version_stages.version_stage == ["ACSPrevious"]

    # a third value moves ACSPrevious along; v1 keeps no stage and drops out of the default listing
    c.put_secret_value(
        kms_models.PutSecretValueRequest(secret_name="cai/model-key", secret_data="third", version_id="v3")
    )
    ids = c.list_secret_version_ids(kms_models.ListSecretVersionIdsRequest(secret_name="cai/model-key")).body
    assert {v.version_id: v.version_stages.version_stage for v in ids.version_ids.version_id} == {
        "v2": ["ACSPrevious"],
        "v3": ["ACSCurrent"],
    }
    ids = c.list_secret_version_ids(
        kms_models.ListSecretVersionIdsRequest(secret_name="cai/model-key", include_deprecated="true")
    ).body
    assert ids.total_count == 3
    expect_error(lambda: _get(c, "cai/model-key", version_stage="NoSuchStage"), "Forbidden.ResourceNotFound", 404)

    # force deletion: gone at once, for every action
    c.delete_secret(kms_models.DeleteSecretRequest(secret_name="cai/model-key", force_delete_without_recovery="true"))
    expect_error(lambda: _get(c, "cai/model-key"), "Forbidden.ResourceNotFound", 404)
    expect_error(
        lambda: c.describe_secret(kms_models.DescribeSecretRequest(secret_name="cai/model-key")),
        "Forbidden.ResourceNotFound",
        404,
    )
    assert kms_env.lab.get_secret_value("cai/model-key") is None


@pytest.mark.parametrize("algorithm", STYLES)
def test_scheduled_deletion_answers_pending_and_restores(kms_env: KmsEnv, algorithm: str | None) -> None:
    c = kms_env.client(algorithm=algorithm)
    _create(c, "app/db")
    deleted = c.delete_secret(kms_models.DeleteSecretRequest(secret_name="app/db", recovery_window_in_days="7")).body
    assert abs(_ts(deleted.planned_delete_time) - (time.time() + 7 * 86400)) < 60
    desc = c.describe_secret(kms_models.DescribeSecretRequest(secret_name="app/db")).body
    assert desc.planned_delete_time == deleted.planned_delete_time
    listed = c.list_secrets(kms_models.ListSecretsRequest()).body
    assert [(s.secret_name, s.planned_delete_time) for s in listed.secret_list.secret] == [
        ("app/db", deleted.planned_delete_time)
    ]
    expect_error(lambda: _get(c, "app/db"), "Rejected.ResourceInDeleteWindow", 409)
    expect_error(
        lambda: c.put_secret_value(
            kms_models.PutSecretValueRequest(secret_name="app/db", secret_data="x", version_id="v9")
        ),
        "Rejected.ResourceInDeleteWindow",
        409,
    )
    expect_error(lambda: _create(c, "app/db"), "Rejected.ResourceInDeleteWindow", 409)
    assert kms_env.lab.get_secret_value("app/db") is None

    c.restore_secret(kms_models.RestoreSecretRequest(secret_name="app/db"))
    assert _get(c, "app/db").secret_data == "s3cret"
    assert kms_env.lab.get_secret_value("app/db") == b"s3cret"


@pytest.mark.parametrize("algorithm", STYLES)
def test_list_secrets_pages_and_filters(kms_env: KmsEnv, algorithm: str | None) -> None:
    c = kms_env.client(algorithm=algorithm)
    names = [f"list/s{i}" for i in range(5)]
    for n in names:
        kms_env.lab.put_secret(n, f"value-{n}")
    seen: list[str] = []
    for page, expected in [(1, 2), (2, 2), (3, 1), (4, 0)]:
        body = c.list_secrets(kms_models.ListSecretsRequest(page_number=page, page_size=2)).body
        assert (body.page_number, body.page_size, body.total_count) == (page, 2, 5)
        assert len(body.secret_list.secret) == expected
        seen += [s.secret_name for s in body.secret_list.secret]
    assert seen == names  # creation order, no overlap between pages

    only = c.list_secrets(
        kms_models.ListSecretsRequest(filters=json.dumps([{"Key": "SecretName", "Values": ["list/s3", "nope"]}]))
    ).body
    assert [s.secret_name for s in only.secret_list.secret] == ["list/s3"]
    assert only.total_count == 1
    expect_error(lambda: c.list_secrets(kms_models.ListSecretsRequest(page_size=101)), "InvalidParameter", 400)
    expect_error(lambda: c.list_secrets(kms_models.ListSecretsRequest(page_number=0)), "InvalidParameter", 400)
    expect_error(lambda: c.list_secrets(kms_models.ListSecretsRequest(filters="[{")), "InvalidParameter", 400)


def test_binary_secret(kms_env: KmsEnv) -> None:
    c = kms_env.client()
    raw = bytes(range(256))
    _create(c, "bin/blob", base64.b64encode(raw).decode(), secret_data_type="binary")
    got = _get(c, "bin/blob")
    assert got.secret_data_type == "binary"
    assert base64.b64decode(got.secret_data) == raw
    assert kms_env.lab.get_secret_value("bin/blob") == raw
    expect_error(lambda: _create(c, "bin/bad", "not base64!", secret_data_type="binary"), "InvalidParameter", 400)


@pytest.mark.parametrize("algorithm", STYLES)
def test_request_errors(kms_env: KmsEnv, algorithm: str | None) -> None:
    c = kms_env.client(algorithm=algorithm)
    _create(c, "dup")
    expect_error(lambda: _create(c, "dup"), "Rejected.ResourceExist", 409)
    expect_error(
        lambda: c.create_secret(kms_models.CreateSecretRequest(secret_name="nov", secret_data="x")),
        "MissingVersionId",
        400,
    )
    expect_error(lambda: c.get_secret_value(kms_models.GetSecretValueRequest()), "MissingSecretName", 400)
    expect_error(lambda: _create(c, "acs/reserved"), "InvalidParameter", 400)
    expect_error(lambda: _create(c, "bad name"), "InvalidParameter", 400)
    expect_error(lambda: _get(c, "never-created"), "Forbidden.ResourceNotFound", 404)
    expect_error(
        lambda: c.delete_secret(kms_models.DeleteSecretRequest(secret_name="dup", recovery_window_in_days="3")),
        "InvalidParameter",
        400,
    )
    expect_error(
        lambda: c.put_secret_value(
            kms_models.PutSecretValueRequest(secret_name="dup", secret_data="x", version_id="v1")
        ),
        "Rejected.ResourceExist",
        409,
    )
    expect_error(lambda: _create(c, "big", "x" * 30721), "InvalidParameter", 400)
    expect_error(
        lambda: _create(c, "tagged", tags=json.dumps([{"TagKey": "acs:x", "TagValue": "v"}])), "InvalidParameter", 400
    )
    expect_error(lambda: _create(c, "tagged", tags='{"TagKey": "k"}'), "InvalidParameter", 400)
    expect_error(lambda: _create(c, "rds", secret_type="Rds"), "InvalidParameter", 400)
    expect_error(lambda: _create(c, "inst", dkmsinstance_id="kst-other"), "Forbidden.ResourceNotFound", 404)
    # an action of the API that the lab does not implement
    err = expect_error(lambda: c.list_keys(kms_models.ListKeysRequest()), "InvalidAction.NotFound", 404)
    assert "GetSecretValue" in err.message
    expect_error(lambda: _get(c, "dup", dry_run="true"), "DryRunOperationError", 400)


@pytest.mark.parametrize("algorithm", STYLES)
def test_wrong_secret_and_unknown_key(kms_env: KmsEnv, algorithm: str | None) -> None:
    kms_env.lab.put_secret("k", "v")
    err = expect_error(
        lambda: _get(kms_env.client(secret=SK + "x", algorithm=algorithm), "k"), "SignatureDoesNotMatch", 400
    )
    assert "server string to sign is:" in err.message
    expect_error(
        lambda: _get(kms_env.client(ak="LTAIunknown", algorithm=algorithm), "k"), "InvalidAccessKeyId.NotFound", 404
    )
    assert _get(kms_env.client(algorithm=algorithm), "k").secret_data == "v"


def test_sm3_signature(kms_env: KmsEnv) -> None:
    c = kms_env.client(algorithm="ACS3-HMAC-SM3")
    _create(c, "sm3")
    assert _get(c, "sm3").secret_data == "s3cret"
    expect_error(
        lambda: _get(kms_env.client(secret="wrong", algorithm="ACS3-HMAC-SM3"), "sm3"), "SignatureDoesNotMatch", 400
    )


@pytest.mark.parametrize("algorithm", STYLES)
def test_sts_tokens(kms_env: KmsEnv, algorithm: str | None) -> None:
    kms_env.lab.put_secret("sts/s", "from-sts")
    creds = kms_env.credentials
    creds.add_sts_token("token-ok", "STS.NTempKey01", "temp-secret-01", time.time() + 900)
    creds.add_sts_token("token-old", "STS.NTempKey02", "temp-secret-02", time.time() - 1)
    ok = kms_env.client(ak="STS.NTempKey01", secret="temp-secret-01", token="token-ok", algorithm=algorithm)
    assert _get(ok, "sts/s").secret_data == "from-sts"

    def call(ak: str, secret: str, token: str | None):
        return lambda: _get(kms_env.client(ak=ak, secret=secret, token=token, algorithm=algorithm), "sts/s")

    expect_error(call("STS.NTempKey02", "temp-secret-02", "token-old"), "InvalidSecurityToken.Expired", 400)
    expect_error(call("STS.NTempKey01", "temp-secret-01", "token-forged"), "InvalidSecurityToken.Malformed", 400)
    expect_error(
        call("STS.NTempKey02", "temp-secret-02", "token-ok"), "InvalidSecurityToken.MismatchWithAccessKey", 400
    )
    expect_error(call("STS.NTempKey01", "wrong", "token-ok"), "SignatureDoesNotMatch", 400)
    # a temporary key is nothing without its token
    expect_error(call("STS.NTempKey01", "temp-secret-01", None), "InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("algorithm", STYLES)
def test_clock_skew(kms_env: KmsEnv, algorithm: str | None) -> None:
    kms_env.lab.put_secret("t", "v")
    c = kms_env.client(algorithm=algorithm)
    for skew in (16 * 60, -16 * 60):
        kms_env.lab.clock_skew_s = skew
        expect_error(lambda: _get(c, "t"), "InvalidTimeStamp.Expired", 400)
    kms_env.lab.clock_skew_s = 14 * 60
    assert _get(c, "t").secret_data == "v"


def test_forbidden_ram(kms_env: KmsEnv) -> None:
    kms_env.credentials.add_key("LTAIreadonly", "ro-secret", actions={"GetSecretValue", "DescribeSecret"})
    kms_env.lab.put_secret("ram/s", "v")
    ro = kms_env.client(ak="LTAIreadonly", secret="ro-secret")
    assert _get(ro, "ram/s").secret_data == "v"
    expect_error(lambda: _create(ro, "ram/new"), "Forbidden.RAM", 403)
    expect_error(lambda: ro.list_secrets(kms_models.ListSecretsRequest()), "Forbidden.RAM", 403)


@pytest.mark.parametrize("algorithm", STYLES)
def test_fault_kms_secret_missing_at_run_time(kms_env: KmsEnv, algorithm: str | None) -> None:
    c = kms_env.client(algorithm=algorithm)
    _create(c, "f/s", "keep-me")
    kms_env.faults.set("kms-secret-missing", True)
    expect_error(lambda: _get(c, "f/s"), "Forbidden.ResourceNotFound", 404)
    expect_error(
        lambda: c.describe_secret(kms_models.DescribeSecretRequest(secret_name="f/s")),
        "Forbidden.ResourceNotFound",
        404,
    )
    expect_error(
        lambda: c.put_secret_value(
            kms_models.PutSecretValueRequest(secret_name="f/s", secret_data="x", version_id="v2")
        ),
        "Forbidden.ResourceNotFound",
        404,
    )
    expect_error(
        lambda: c.delete_secret(kms_models.DeleteSecretRequest(secret_name="f/s")), "Forbidden.ResourceNotFound", 404
    )
    assert c.list_secrets(kms_models.ListSecretsRequest()).body.total_count == 0
    assert kms_env.lab.get_secret_value("f/s") is None
    kms_env.faults.set("kms-secret-missing", False)
    assert _get(c, "f/s").secret_data == "keep-me"  # nothing was lost or changed while the fault was on
    assert _get(c, "f/s").version_id == "v1"
    assert kms_env.lab.get_secret_value("f/s") == b"keep-me"


@pytest.mark.parametrize("algorithm", STYLES)
def test_fault_kms_bad_key_at_run_time(kms_env: KmsEnv, algorithm: str | None) -> None:
    kms_env.lab.put_secret("b", "v")
    c = kms_env.client(algorithm=algorithm)
    kms_env.credentials.add_sts_token("tok", "STS.Key", "sts-secret", time.time() + 600)
    sts = kms_env.client(ak="STS.Key", secret="sts-secret", token="tok", algorithm=algorithm)
    kms_env.faults.set("kms-bad-key", True)
    expect_error(lambda: _get(c, "b"), "InvalidAccessKeyId.NotFound", 404)
    expect_error(lambda: _get(sts, "b"), "InvalidAccessKeyId.NotFound", 404)
    kms_env.faults.set("kms-bad-key", False)
    assert _get(c, "b").secret_data == "v"
    assert _get(sts, "b").secret_data == "v"


def test_persistence_across_restart(kms_env: KmsEnv) -> None:
    c = kms_env.client()
    _create(c, "p/one", "first")
    c.put_secret_value(kms_models.PutSecretValueRequest(secret_name="p/one", secret_data="second", version_id="v2"))
    _create(c, "p/doomed")
    c.delete_secret(kms_models.DeleteSecretRequest(secret_name="p/doomed", recovery_window_in_days="10"))
    _create(c, "p/gone")
    c.delete_secret(kms_models.DeleteSecretRequest(secret_name="p/gone", force_delete_without_recovery="true"))
    kms_env.lab.stop()

    state_file = kms_env.state_dir / "kms-secrets.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in kms_env.state_dir.iterdir()) == ["kms-secrets.json"]

    lab2 = kms_env.new_lab().start()
    c2 = kms_env.client(lab=lab2)
    assert _get(c2, "p/one").secret_data == "second"
    assert _get(c2, "p/one", version_stage="ACSPrevious").secret_data == "first"
    assert c2.describe_secret(kms_models.DescribeSecretRequest(secret_name="p/doomed")).body.planned_delete_time
    expect_error(lambda: _get(c2, "p/doomed"), "Rejected.ResourceInDeleteWindow", 409)
    expect_error(lambda: _get(c2, "p/gone"), "Forbidden.ResourceNotFound", 404)
    assert lab2.get_secret_value("p/one") == b"second"


def test_restart_of_the_same_lab_keeps_its_endpoint(kms_env: KmsEnv) -> None:
    lab = kms_env.lab
    c = kms_env.client()
    _create(c, "r/s")
    endpoint = lab.endpoint
    lab.stop()
    with pytest.raises(RuntimeError):
        _ = lab.endpoint
    lab.start()
    assert lab.endpoint == endpoint
    # the client's pooled keep-alive connection died with the old listener; the SDK reconnects
    assert _get(c, "r/s").secret_data == "s3cret"


def test_concurrent_writers(kms_env: KmsEnv) -> None:
    _create(kms_env.client(), "c/shared", "v0", "v0")
    failures: list[BaseException] = []

    def writer(i: int) -> None:
        c = kms_env.client(algorithm="v2" if i % 2 else None)
        try:
            for j in range(5):
                c.put_secret_value(
                    kms_models.PutSecretValueRequest(
                        secret_name="c/shared", secret_data=f"{i}-{j}", version_id=f"t{i}-{j}"
                    )
                )
                _create(c, f"c/own-{i}-{j}")
        except BaseException as e:  # reported below, in the test's thread
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not failures, failures
    secret = kms_env.lab.store.get("c/shared")
    stages = [s for v in secret.versions for s in v.stages]
    assert sorted(stages) == ["ACSCurrent", "ACSPrevious"]  # exactly one of each, whatever the interleaving
    reread = kms_env.new_lab().store  # what is on disk is what was served
    assert len(reread.all()) == 1 + 6 * 5
    assert [v.version_id for v in reread.get("c/shared").versions] == [v.version_id for v in secret.versions]


def test_stop_ends_keep_alive_connections(kms_env: KmsEnv) -> None:
    c = kms_env.client()
    _create(c, "k/s")  # leaves a keep-alive connection in the SDK's pool
    kms_env.lab.stop()
    # a stopped lab answers nothing, not even over a connection opened before stop()
    with pytest.raises(UnretryableException) as info:
        _get(c, "k/s")
    assert info.value.code is None


def test_server_failure_is_a_server_exception_and_changes_nothing(
    kms_env: KmsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = kms_env.client()

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kms_env.lab.store, "_save", disk_full)
    expect_error(lambda: _create(c, "x/y"), "InternalFailure", 500, exc_type=ServerException)
    monkeypatch.undo()
    expect_error(lambda: _get(c, "x/y"), "Forbidden.ResourceNotFound", 404)


def test_lab_endpoint_shape(kms_env: KmsEnv) -> None:
    host, _, port = kms_env.lab.endpoint.partition(":")
    assert host == "127.0.0.1" and int(port) == kms_env.lab.port > 0
