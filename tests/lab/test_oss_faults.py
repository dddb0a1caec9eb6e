"""Every oss-* fault switch, flipped at run time, fails the real oss2 client the way the cloud would."""

from __future__ import annotations

import threading
import time
from email.utils import parsedate_to_datetime

import oss2
import pytest
import requests


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def seeded(oss_lab_bucket):
    oss_lab_bucket.put_object("model.bin", b"m" * 4096)
    return oss_lab_bucket


def test_access_denied(seeded, oss_lab_faults):
    oss_lab_faults.set("oss-access-denied", True)
    with pytest.raises(oss2.exceptions.AccessDenied) as ei:
        seeded.get_object("model.bin")
    assert ei.value.status == 403
    with pytest.raises(oss2.exceptions.AccessDenied):
        seeded.get_bucket_info()
    with pytest.raises(oss2.exceptions.AccessDenied):  # HEAD: decoded from x-oss-err
        seeded.head_object("model.bin")
    oss_lab_faults.set("oss-access-denied", False)
    assert seeded.get_object("model.bin").read() == b"m" * 4096


def test_no_such_bucket(seeded, oss_lab, oss_lab_faults, oss_lab_keys):
    oss_lab_faults.set("oss-no-such-bucket", True)
    with pytest.raises(oss2.exceptions.NoSuchBucket) as ei:
        seeded.get_bucket_info()
    assert ei.value.status == 404 and ei.value.details["BucketName"] == "lab-bucket"
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        seeded.put_object("x", b"y")
    with pytest.raises(oss2.exceptions.NotFound):
        seeded.head_object("model.bin")
    svc = oss2.Service(oss2.Auth(oss_lab_keys.owner_id, oss_lab_keys.owner_secret), oss_lab.endpoint)
    assert svc.list_buckets().buckets == []
    oss_lab_faults.set("oss-no-such-bucket", False)
    assert seeded.get_bucket_info().name == "lab-bucket"
    assert [b.name for b in svc.list_buckets().buckets] == ["lab-bucket"]


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_bad_signature(seeded, oss_lab_faults, oss_lab_bucket_for, oss_lab_keys, version):
    auth = (oss2.Auth if version == "v1" else oss2.AuthV4)(oss_lab_keys.owner_id, oss_lab_keys.owner_secret)
    bucket = oss_lab_bucket_for(auth)
    oss_lab_faults.set("oss-bad-signature", True)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as ei:
        bucket.get_object("model.bin")
    assert ei.value.details["StringToSign"]
    oss_lab_faults.set("oss-bad-signature", False)
    assert bucket.get_object("model.bin").read() == b"m" * 4096


def test_skew(seeded, oss_lab_faults, oss_lab_bucket_for, oss_lab_keys):
    v4 = oss_lab_bucket_for(oss2.AuthV4(oss_lab_keys.owner_id, oss_lab_keys.owner_secret))
    oss_lab_faults.set("oss-skew", True)
    for bucket in (seeded, v4):
        with pytest.raises(oss2.exceptions.ServerError) as ei:
            bucket.get_object("model.bin")
        e = ei.value
        assert (e.status, e.code) == (403, "RequestTimeTooSkewed")
        server_time = parsedate_to_datetime(e.details["ServerTime"]).timestamp()
        assert 1100 < server_time - time.time() < 1300
        assert abs(parsedate_to_datetime(e.headers["Date"]).timestamp() - server_time) < 5
    oss_lab_faults.set("oss-skew", False)
    assert seeded.get_object("model.bin").read() == b"m" * 4096


def test_token_expired(seeded, oss_lab_faults, oss_lab_bucket_for, oss_lab_keys):
    k = oss_lab_keys
    sts = oss_lab_bucket_for(oss2.StsAuth(k.sts_id, k.sts_secret, k.sts_token))
    assert sts.get_object("model.bin").read() == b"m" * 4096
    oss_lab_faults.set("oss-token-expired", True)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        sts.get_object("model.bin")
    assert (ei.value.status, ei.value.code, ei.value.ec) == (403, "SecurityTokenExpired", "0002-00000007")
    assert seeded.get_object("model.bin").read() == b"m" * 4096  # long-term keys are not affected
    oss_lab_faults.set("oss-token-expired", False)
    assert sts.get_object("model.bin").read() == b"m" * 4096


def test_stall_body_times_out_then_recovers(seeded, oss_lab, oss_lab_faults, oss_lab_bucket_for, oss_lab_keys):
    impatient = oss_lab_bucket_for(oss2.Auth(oss_lab_keys.owner_id, oss_lab_keys.owner_secret), timeout=0.5)
    oss_lab_faults.set("oss-stall-body", True)
    result = impatient.get_object("model.bin")  # the headers arrive ...
    assert result.status == 200 and result.content_length == 4096
    with pytest.raises(requests.exceptions.ConnectionError):  # ... the body never does
        result.read()
    assert wait_for(lambda: oss_lab.stalled_answers == 1, 3.0)
    head = impatient.head_object("model.bin")  # only object bodies stall
    assert head.content_length == 4096

    oss_lab_faults.set("oss-stall-body", False)
    assert wait_for(lambda: oss_lab.stalled_answers == 0, 3.0)
    assert impatient.get_object("model.bin").read() == b"m" * 4096


def test_stall_ends_when_the_lab_stops(seeded, oss_lab, oss_lab_faults, oss_lab_bucket_for, oss_lab_keys):
    patient = oss_lab_bucket_for(oss2.Auth(oss_lab_keys.owner_id, oss_lab_keys.owner_secret), timeout=30)
    oss_lab_faults.set("oss-stall-body", True)
    outcome: list[object] = []

    def reader() -> None:
        try:
            outcome.append(patient.get_object("model.bin").read())
        except Exception as exc:
            outcome.append(exc)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert wait_for(lambda: oss_lab.stalled_answers == 1, 5.0)
    started = time.monotonic()
    oss_lab.stop()
    t.join(5.0)
    assert not t.is_alive()
    assert time.monotonic() - started < 5.0
    assert oss_lab.stalled_answers == 0
    assert len(outcome) == 1 and isinstance(
        outcome[0], (requests.exceptions.RequestException, oss2.exceptions.RequestError)
    )
