"""Multipart uploads: oss2.resumable_upload (threads, interruption, resume) and the protocol's error cases."""

from __future__ import annotations

import hashlib
import os

import oss2
import pytest
from oss2.models import PartInfo
from oss2.utils import Crc64

PART = 100 * 1024


def crc64(data: bytes) -> int:
    c = Crc64()
    c.update(data)
    return int(c.crc)


def multipart_etag(data: bytes, part_size: int) -> str:
    digests = b"".join(hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size))
    return f"{hashlib.md5(digests).hexdigest().upper()}-{(len(data) + part_size - 1) // part_size}"


@pytest.fixture
def three_part_file(tmp_path):
    data = os.urandom(2 * PART) + os.urandom(PART // 2)  # 3 parts: 100 KiB, 100 KiB, 50 KiB
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    return path, data


def test_resumable_upload_three_parts_three_threads(oss_lab, oss_lab_bucket, three_part_file, tmp_path):
    path, data = three_part_file
    store = oss2.ResumableStore(root=str(tmp_path), dir="ckpt")
    progress: list[tuple[int, int]] = []
    result = oss2.resumable_upload(
        oss_lab_bucket,
        "big/model.bin",
        str(path),
        store=store,
        multipart_threshold=PART,
        part_size=PART,
        num_threads=3,
        progress_callback=lambda done, total: progress.append((done, total)),
    )
    assert result.etag == multipart_etag(data, PART)
    assert result.crc == crc64(data)
    assert oss_lab.op_counts["UploadPart"] == 3
    assert oss_lab.op_counts["InitiateMultipartUpload"] == 1
    assert oss_lab.op_counts["CompleteMultipartUpload"] == 1
    assert progress[-1] == (len(data), len(data))

    head = oss_lab_bucket.head_object("big/model.bin")
    assert head.object_type == "Multipart"
    assert head.content_length == len(data)
    assert head.server_crc == crc64(data)
    got = oss_lab_bucket.get_object("big/model.bin")
    assert got.read() == data
    assert got.client_crc == got.server_crc
    assert next(iter(oss2.ObjectIterator(oss_lab_bucket))).type == "Multipart"
    assert not any((tmp_path / "ckpt").iterdir())  # checkpoint removed on success


class Interrupted(Exception):
    pass


def test_resumable_upload_resumes_after_interruption(oss_lab, oss_lab_bucket, three_part_file, tmp_path):
    path, data = three_part_file
    store = oss2.ResumableStore(root=str(tmp_path), dir="ckpt")

    def stop_after_first_part(done: int, total: int) -> None:
        if done >= PART:
            raise Interrupted(done)

    with pytest.raises(Interrupted):
        oss2.resumable_upload(
            oss_lab_bucket,
            "resume.bin",
            str(path),
            store=store,
            multipart_threshold=PART,
            part_size=PART,
            num_threads=1,
            progress_callback=stop_after_first_part,
        )
    assert oss_lab.op_counts["UploadPart"] == 1
    assert not oss_lab_bucket.object_exists("resume.bin")

    # the checkpoint names the upload, and the server still has its first part
    record_key = store.make_store_key("lab-bucket", "resume.bin", os.path.abspath(path))
    record = store.get(record_key)
    assert record is not None
    upload_id = record["upload_id"]
    parts = oss_lab_bucket.list_parts("resume.bin", upload_id).parts
    assert [(p.part_number, p.size) for p in parts] == [(1, PART)]
    assert parts[0].etag == hashlib.md5(data[:PART]).hexdigest().upper()
    uploads = oss_lab_bucket.list_multipart_uploads().upload_list
    assert [(u.key, u.upload_id) for u in uploads] == [("resume.bin", upload_id)]

    seen: list[int] = []
    result = oss2.resumable_upload(
        oss_lab_bucket,
        "resume.bin",
        str(path),
        store=store,
        multipart_threshold=PART,
        part_size=PART,
        num_threads=3,
        progress_callback=lambda done, total: seen.append(done),
    )
    # resumed: same upload, only the two missing parts were sent
    assert oss_lab.op_counts["InitiateMultipartUpload"] == 1
    assert oss_lab.op_counts["UploadPart"] == 3
    assert min(seen) >= PART
    assert result.etag == multipart_etag(data, PART)
    assert oss_lab_bucket.get_object("resume.bin").read() == data
    assert oss_lab_bucket.head_object("resume.bin").server_crc == crc64(data)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        oss_lab_bucket.list_parts("resume.bin", upload_id)
    assert store.get(record_key) is None


def test_list_parts_pagination(oss_lab_bucket):
    up = oss_lab_bucket.init_multipart_upload("paged.bin").upload_id
    for n in range(1, 6):
        oss_lab_bucket.upload_part("paged.bin", up, n, bytes([n]) * 10)
    r = oss_lab_bucket.list_parts("paged.bin", up, max_parts=2)
    assert [p.part_number for p in r.parts] == [1, 2] and r.is_truncated and r.next_marker == "2"
    r = oss_lab_bucket.list_parts("paged.bin", up, marker="2", max_parts=2)
    assert [p.part_number for p in r.parts] == [3, 4]
    assert [p.part_number for p in oss2.PartIterator(oss_lab_bucket, "paged.bin", up, max_parts=2)] == [1, 2, 3, 4, 5]
    oss_lab_bucket.abort_multipart_upload("paged.bin", up)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        oss_lab_bucket.upload_part("paged.bin", up, 6, b"late")


def test_complete_validates_parts(oss_lab_bucket):
    key = "strict.bin"
    up = oss_lab_bucket.init_multipart_upload(key).upload_id
    p1 = oss_lab_bucket.upload_part(key, up, 1, b"a" * PART)
    p2 = oss_lab_bucket.upload_part(key, up, 2, b"b" * 10)
    p3 = oss_lab_bucket.upload_part(key, up, 3, b"c" * 10)

    with pytest.raises(oss2.exceptions.ServerError) as ei:  # a wrong ETag
        oss_lab_bucket.complete_multipart_upload(key, up, [PartInfo(1, p1.etag), PartInfo(2, "0" * 32)])
    assert ei.value.code == "InvalidPart"
    with pytest.raises(oss2.exceptions.ServerError) as ei:  # a non-last part below 100 KiB
        oss_lab_bucket.complete_multipart_upload(
            key, up, [PartInfo(1, p1.etag), PartInfo(2, p2.etag), PartInfo(3, p3.etag)]
        )
    assert ei.value.code == "EntityTooSmall"
    with pytest.raises(oss2.exceptions.ServerError) as ei:  # a part that was never uploaded
        oss_lab_bucket.complete_multipart_upload(key, up, [PartInfo(1, p1.etag), PartInfo(9, p2.etag)])
    assert ei.value.code == "InvalidPart"

    # a subset is fine: part 1 + part 3 make the object, part 2 is dropped
    done = oss_lab_bucket.complete_multipart_upload(
        key, up, [PartInfo(1, p1.etag, size=PART, part_crc=p1.crc), PartInfo(3, p3.etag, size=10, part_crc=p3.crc)]
    )
    data = b"a" * PART + b"c" * 10
    assert done.crc == crc64(data)  # oss2 itself also checks this against the combined part CRCs
    assert oss_lab_bucket.get_object(key).read() == data
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        oss_lab_bucket.complete_multipart_upload(key, up, [PartInfo(1, p1.etag)])


def test_complete_part_order_and_complete_all(oss_lab_bucket, oss_lab_raw):
    key = "order.bin"
    up = oss_lab_bucket.init_multipart_upload(key).upload_id
    e1 = oss_lab_bucket.upload_part(key, up, 1, b"x" * PART).etag
    e2 = oss_lab_bucket.upload_part(key, up, 2, b"y").etag
    body = (
        f'<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>"{e2}"</ETag></Part>'
        f'<Part><PartNumber>1</PartNumber><ETag>"{e1}"</ETag></Part></CompleteMultipartUpload>'
    ).encode()
    r = oss_lab_raw("POST", "lab-bucket", key, params={"uploadId": up}, data=body)
    assert r.status_code == 400 and b"<Code>InvalidPartOrder</Code>" in r.content
    r = oss_lab_raw("POST", "lab-bucket", key, params={"uploadId": up}, data=b"<CompleteMultipartUpload><Part>")
    assert r.status_code == 400 and b"<Code>MalformedXML</Code>" in r.content

    oss_lab_bucket.complete_multipart_upload(key, up, None, headers={"x-oss-complete-all": "yes"})
    assert oss_lab_bucket.get_object(key).read() == b"x" * PART + b"y"


def test_upload_part_number_bounds(oss_lab_bucket):
    up = oss_lab_bucket.init_multipart_upload("n.bin").upload_id
    with pytest.raises(oss2.exceptions.InvalidArgument):
        oss_lab_bucket.upload_part("n.bin", up, 10001, b"x")
    with pytest.raises(oss2.exceptions.NoSuchUpload):  # an upload of another key
        oss_lab_bucket.upload_part("other.bin", up, 1, b"x")
