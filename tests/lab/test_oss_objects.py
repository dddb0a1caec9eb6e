"""Objects, listing and buckets through the real oss2 client, with every signature flavour."""

from __future__ import annotations

import base64
import hashlib
import re
from email.utils import formatdate

import httpx
import oss2
import pytest
from oss2.utils import Crc64

from cai_tui.lab.oss import OssLab

AUTHS = ["v1", "v2", "v4", "sts-v1", "sts-v4"]


def make_auth(kind: str, k) -> object:
    if kind == "v1":
        return oss2.Auth(k.owner_id, k.owner_secret)
    if kind == "v2":
        return oss2.AuthV2(k.owner_id, k.owner_secret)
    if kind == "v4":
        return oss2.AuthV4(k.owner_id, k.owner_secret)
    if kind == "sts-v1":
        return oss2.StsAuth(k.sts_id, k.sts_secret, k.sts_token)
    if kind == "sts-v4":
        return oss2.StsAuth(k.sts_id, k.sts_secret, k.sts_token, auth_version=oss2.AUTH_VERSION_4)
    raise AssertionError(kind)


def crc64(data: bytes) -> int:
    c = Crc64()
    c.update(data)
    return int(c.crc)


@pytest.mark.parametrize("kind", AUTHS)
def test_object_round_trip_every_signature(kind, oss_lab_bucket_for, oss_lab_keys):
    bucket = oss_lab_bucket_for(make_auth(kind, oss_lab_keys))
    data = bytes(range(256)) * 40 + "末尾".encode()
    key = "dir one/sub+dir/file name ü?#%.bin"

    put = bucket.put_object(key, data, headers={"x-oss-meta-owner": "lab", "Content-Type": "application/x-test"})
    md5 = hashlib.md5(data).hexdigest().upper()
    assert put.etag == md5
    assert put.crc == crc64(data)
    assert put.resp.headers["ETag"] == f'"{md5}"'
    assert put.request_id and re.fullmatch(r"[0-9A-F]{24}", put.request_id)

    got = bucket.get_object(key)
    assert got.read() == data
    assert got.client_crc == got.server_crc == crc64(data)
    assert got.content_type == "application/x-test"
    assert got.headers["x-oss-meta-owner"] == "lab"

    head = bucket.head_object(key)
    assert head.content_length == len(data)
    assert head.etag == md5
    assert head.object_type == "Normal"
    assert head.server_crc == crc64(data)
    assert head.headers["Content-MD5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert re.fullmatch(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
        r"\d\d:\d\d:\d\d GMT",
        head.headers["Last-Modified"],
    )

    meta = bucket.get_object_meta(key)
    assert meta.content_length == len(data) and meta.etag == md5
    assert bucket.object_exists(key) is True

    bucket.delete_object(key)
    assert bucket.object_exists(key) is False
    with pytest.raises(oss2.exceptions.NoSuchKey) as ei:
        bucket.get_object(key)
    assert ei.value.ec == "0026-00000001"
    bucket.delete_object(key)  # deleting a missing object is a 204, as on OSS


def test_range_reads(oss_lab_bucket):
    data = bytes(i % 251 for i in range(10_000))
    oss_lab_bucket.put_object("r.bin", data)

    r = oss_lab_bucket.get_object("r.bin", byte_range=(100, 199))
    assert r.status == 206
    assert r.headers["Content-Range"] == "bytes 100-199/10000"
    assert r.read() == data[100:200]
    assert r.server_crc == crc64(data)  # OSS reports the whole object's CRC on a range read too

    assert oss_lab_bucket.get_object("r.bin", byte_range=(9990, None)).read() == data[9990:]
    assert oss_lab_bucket.get_object("r.bin", byte_range=(None, 7)).read() == data[-7:]

    # out of range: OSS (compat behaviour) ignores the Range and sends everything with 200
    whole = oss_lab_bucket.get_object("r.bin", byte_range=(20_000, 30_000))
    assert whole.status == 200 and whole.read() == data
    # ... unless the client asks for the standard behaviour
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        oss_lab_bucket.get_object("r.bin", byte_range=(20_000, 30_000), headers={"x-oss-range-behavior": "standard"})
    assert ei.value.status == 416 and ei.value.code == "InvalidRange"
    clipped = oss_lab_bucket.get_object(
        "r.bin", byte_range=(9000, 30_000), headers={"x-oss-range-behavior": "standard"}
    )
    assert clipped.status == 206 and clipped.read() == data[9000:]


def test_conditional_get(oss_lab_bucket):
    put = oss_lab_bucket.put_object("c.txt", b"conditional")
    assert oss_lab_bucket.get_object("c.txt", headers={"If-Match": f'"{put.etag}"'}).read() == b"conditional"
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        oss_lab_bucket.get_object("c.txt", headers={"If-Match": '"0000"'})
    with pytest.raises(oss2.exceptions.NotModified):
        oss_lab_bucket.get_object("c.txt", headers={"If-None-Match": f'"{put.etag}"'})


def test_resumable_download_checks_crc(oss_lab_bucket, tmp_path):
    data = bytes(i % 253 for i in range(300 * 1024))
    oss_lab_bucket.put_object("dl.bin", data)
    out = tmp_path / "dl.bin"
    oss2.resumable_download(
        oss_lab_bucket,
        "dl.bin",
        str(out),
        multiget_threshold=100 * 1024,
        part_size=100 * 1024,
        num_threads=3,
        store=oss2.ResumableDownloadStore(root=str(tmp_path / "ckpt")),
    )
    assert out.read_bytes() == data


def test_streamed_put_with_chunked_body(oss_lab_bucket):
    def gen():
        for i in range(50):
            yield bytes([i]) * 1000

    oss_lab_bucket.put_object("chunked.bin", gen())
    expect = b"".join(bytes([i]) * 1000 for i in range(50))
    assert oss_lab_bucket.get_object("chunked.bin").read() == expect


def test_wrong_content_md5_is_refused(oss_lab_bucket):
    with pytest.raises(oss2.exceptions.InvalidDigest):
        oss_lab_bucket.put_object("md5.txt", b"payload", headers={"Content-MD5": base64.b64encode(b"x" * 16).decode()})
    assert not oss_lab_bucket.object_exists("md5.txt")


def test_forbid_overwrite(oss_lab_bucket):
    oss_lab_bucket.put_object("once.txt", b"1")
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        oss_lab_bucket.put_object("once.txt", b"2", headers={"x-oss-forbid-overwrite": "true"})
    assert ei.value.status == 409 and ei.value.code == "FileAlreadyExists"
    assert oss_lab_bucket.get_object("once.txt").read() == b"1"


def _fill(bucket, keys):
    for k in keys:
        bucket.put_object(k, k.encode())


KEYS = ["a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "c/4.txt", "d.txt", "e/5.txt", "e/6.txt", "f.txt", "ü/7.txt"]


def test_list_objects_v1_prefix_delimiter_pagination(oss_lab_bucket):
    _fill(oss_lab_bucket, KEYS)

    r = oss_lab_bucket.list_objects()
    assert [o.key for o in r.object_list] == KEYS
    assert r.is_truncated is False
    o = r.object_list[0]
    assert o.etag == hashlib.md5(b"a.txt").hexdigest().upper() and o.size == 5 and o.type == "Normal"
    assert o.storage_class == "Standard" and o.owner is not None

    r = oss_lab_bucket.list_objects(delimiter="/")
    assert [o.key for o in r.object_list] == ["a.txt", "d.txt", "f.txt"]
    assert r.prefix_list == ["b/", "c/", "e/", "ü/"]

    r = oss_lab_bucket.list_objects(prefix="b/", delimiter="/")
    assert [o.key for o in r.object_list] == ["b/1.txt", "b/2.txt"]
    assert r.prefix_list == ["b/c/"]

    # pages of 2, objects and common prefixes both count towards max-keys
    seen: list[str] = []
    marker = ""
    pages = 0
    while True:
        r = oss_lab_bucket.list_objects(delimiter="/", marker=marker, max_keys=2)
        pages += 1
        seen += [o.key for o in r.object_list] + r.prefix_list
        if not r.is_truncated:
            break
        marker = r.next_marker
    assert sorted(seen) == ["a.txt", "b/", "c/", "d.txt", "e/", "f.txt", "ü/"]
    assert len(seen) == len(set(seen)) == 7
    assert pages == 4

    assert [o.key for o in oss2.ObjectIterator(oss_lab_bucket, prefix="e/", max_keys=1)] == ["e/5.txt", "e/6.txt"]
    with pytest.raises(oss2.exceptions.InvalidArgument):
        oss_lab_bucket.list_objects(max_keys=5000)


def test_list_objects_v2(oss_lab_bucket):
    _fill(oss_lab_bucket, KEYS)
    r = oss_lab_bucket.list_objects_v2(prefix="b/")
    assert [o.key for o in r.object_list] == ["b/1.txt", "b/2.txt", "b/c/3.txt"]
    assert r.object_list[0].owner is None  # no fetch-owner
    assert oss_lab_bucket.list_objects_v2(prefix="b/", fetch_owner=True).object_list[0].owner.id == "1234567890"

    r = oss_lab_bucket.list_objects_v2(start_after="d.txt")
    assert [o.key for o in r.object_list] == KEYS[KEYS.index("d.txt") + 1 :]

    keys: list[str] = []
    token = ""
    while True:
        r = oss_lab_bucket.list_objects_v2(continuation_token=token, max_keys=3, delimiter="/")
        keys += [o.key for o in r.object_list] + r.prefix_list
        if not r.is_truncated:
            break
        token = r.next_continuation_token
    assert sorted(keys) == ["a.txt", "b/", "c/", "d.txt", "e/", "f.txt", "ü/"]

    all_keys = [o.key for o in oss2.ObjectIteratorV2(oss_lab_bucket, max_keys=4)]
    assert all_keys == KEYS

    # without encoding-type the keys come back as they are (and oss2 does not decode them)
    r = oss_lab_bucket.list_objects_v2(prefix="ü", encoding_type="")
    assert [o.key for o in r.object_list] == ["ü/7.txt"]


def test_list_url_encoding_on_the_wire(oss_lab_bucket, oss_lab_raw):
    oss_lab_bucket.put_object("sp ace/ü", b"x")
    assert [o.key for o in oss_lab_bucket.list_objects(prefix="sp ace/").object_list] == ["sp ace/ü"]

    encoded = oss_lab_raw("GET", "lab-bucket", params={"prefix": "sp ace/", "encoding-type": "url"})
    assert encoded.status_code == 200
    assert b"<EncodingType>url</EncodingType>" in encoded.content
    assert b"<Key>sp%20ace%2F%C3%BC</Key>" in encoded.content
    assert b"<Prefix>sp%20ace%2F</Prefix>" in encoded.content

    plain = oss_lab_raw("GET", "lab-bucket", params={"prefix": "sp ace/"})
    assert b"EncodingType" not in plain.content
    assert "<Key>sp ace/ü</Key>".encode() in plain.content

    bad = oss_lab_raw("GET", "lab-bucket", params={"encoding-type": "base64"})
    assert bad.status_code == 400 and b"<Code>InvalidArgument</Code>" in bad.content


def test_bucket_info_location_acl(oss_lab, oss_lab_bucket):
    info = oss_lab_bucket.get_bucket_info()
    assert info.name == "lab-bucket"
    assert info.owner.id == "1234567890"
    assert info.acl.grant == "private"
    assert info.location == "oss-cn-lab"
    assert info.storage_class == "Standard"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", info.creation_date)
    assert oss_lab_bucket.get_bucket_location().location == "oss-cn-lab"
    assert oss_lab_bucket.get_bucket_acl().acl == "private"


def test_create_and_delete_bucket(oss_lab, oss_lab_bucket_for, oss_lab_keys):
    owner = oss2.AuthV4(oss_lab_keys.owner_id, oss_lab_keys.owner_secret)
    b = oss_lab_bucket_for(owner, bucket="made-by-client")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_info()
    b.create_bucket()
    assert b.get_bucket_info().owner.id == "1234567890"
    svc = oss2.Service(owner, oss_lab.endpoint, region="cn-lab")
    assert {x.name for x in svc.list_buckets().buckets} == {"lab-bucket", "made-by-client"}

    b.put_object("k", b"v")
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        b.delete_bucket()
    b.delete_object("k")
    b.delete_bucket()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_info()

    # someone else's name is taken; a RAM user cannot create buckets
    other = oss_lab_bucket_for(oss2.Auth(oss_lab_keys.other_owner_id, oss_lab_keys.other_owner_secret))
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        other.create_bucket()
    assert ei.value.status == 409 and ei.value.code == "BucketAlreadyExists"
    user = oss_lab_bucket_for(oss2.Auth(oss_lab_keys.user_id, oss_lab_keys.user_secret), bucket="user-bucket")
    with pytest.raises(oss2.exceptions.AccessDenied):
        user.create_bucket()

    with pytest.raises(ValueError):
        oss_lab.create_bucket("Bad_Name")


def test_every_answer_has_a_request_id(oss_lab):
    with httpx.Client(base_url=oss_lab.endpoint, timeout=5) as c:
        for method, path in [
            ("GET", "/"),
            ("GET", "/lab-bucket/x"),
            ("HEAD", "/nope-bucket/x"),
            ("PATCH", "/lab-bucket/x"),
            ("PUT", "/Bad_Bucket/x"),
            ("GET", "/lab-bucket/?bucketInfo"),
        ]:
            r = c.request(method, path, headers={"Date": formatdate(usegmt=True)})
            assert re.fullmatch(r"[0-9A-F]{24}", r.headers["x-oss-request-id"]), (method, path, r.status_code)
            assert r.headers["Server"] == "AliyunOSS"
            if method != "HEAD":
                assert r.headers["Content-Type"] == "application/xml"
                assert b"<Error>" in r.content and b"<RequestId>" in r.content and b"<HostId>" in r.content


def test_lab_restart_keeps_objects_and_endpoint(oss_lab, oss_lab_bucket):
    oss_lab_bucket.put_object("persist.txt", b"kept")
    endpoint = oss_lab.endpoint
    oss_lab.stop()
    with pytest.raises(oss2.exceptions.RequestError):
        oss2.Bucket(oss_lab_bucket.auth, endpoint, "lab-bucket", connect_timeout=2).get_object("persist.txt")
    oss_lab.start()
    assert oss_lab.endpoint == endpoint
    assert oss_lab_bucket.get_object("persist.txt").read() == b"kept"


def test_objects_persist_across_lab_instances(oss_lab_state, oss_lab_credentials, oss_lab_faults, oss_lab_keys):
    lab = OssLab(oss_lab_state, oss_lab_credentials, oss_lab_faults, region="cn-lab")
    lab.create_bucket("persist-bucket")
    with lab:
        b = oss2.Bucket(oss2.Auth(oss_lab_keys.owner_id, oss_lab_keys.owner_secret), lab.endpoint, "persist-bucket")
        b.put_object("k", b"value")
    lab.close()
    lab2 = OssLab(oss_lab_state, oss_lab_credentials, oss_lab_faults, region="cn-lab")
    with lab2:
        b = oss2.Bucket(oss2.Auth(oss_lab_keys.owner_id, oss_lab_keys.owner_secret), lab2.endpoint, "persist-bucket")
        assert b.get_object("k").read() == b"value"
    lab2.close()
