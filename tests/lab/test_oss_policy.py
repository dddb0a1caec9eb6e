"""Bucket policies are enforced: RAM users need an Allow, Deny beats everything, SourceIp needs SourceVpc."""

from __future__ import annotations

import json

import oss2
import pytest

UID = "1234567890"
BUCKET = "lab-bucket"
RESOURCES = [f"acs:oss:*:{UID}:{BUCKET}", f"acs:oss:*:{UID}:{BUCKET}/*"]


def grant(ip: str, actions: list[str], principal: list[str] | None = None) -> str:
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": principal or ["*"],
                    "Action": actions,
                    "Resource": RESOURCES,
                    "Condition": {"IpAddress": {"acs:SourceIp": [ip]}, "StringNotLike": {"acs:SourceVpc": "vpc-*"}},
                }
            ],
        }
    )


@pytest.fixture
def user_bucket(oss_lab_bucket_for, oss_lab_keys):
    return oss_lab_bucket_for(oss2.Auth(oss_lab_keys.user_id, oss_lab_keys.user_secret))


def test_ram_user_without_policy_is_denied(oss_lab_bucket, user_bucket):
    oss_lab_bucket.put_object("model/w.bin", b"weights")
    for call in (
        user_bucket.get_bucket_info,
        lambda: user_bucket.get_object("model/w.bin"),
        lambda: user_bucket.list_objects(),
        lambda: user_bucket.put_object("x", b"y"),
    ):
        with pytest.raises(oss2.exceptions.AccessDenied):
            call()
    with pytest.raises(oss2.exceptions.ServerError) as ei:  # HEAD: the error arrives in x-oss-err
        user_bucket.head_object("model/w.bin")
    assert (ei.value.status, ei.value.code) == (403, "AccessDenied")


def test_policy_granting_loopback_allows_the_granted_actions_only(oss_lab_bucket, user_bucket):
    oss_lab_bucket.put_object("model/w.bin", b"weights")
    oss_lab_bucket.put_bucket_policy(grant("127.0.0.1/32", ["oss:GetObject", "oss:ListObjects", "oss:GetBucketInfo"]))
    assert json.loads(oss_lab_bucket.get_bucket_policy().policy)["Statement"][0]["Effect"] == "Allow"

    assert user_bucket.get_object("model/w.bin").read() == b"weights"
    assert user_bucket.head_object("model/w.bin").content_length == 7
    assert [o.key for o in user_bucket.list_objects(prefix="model/").object_list] == ["model/w.bin"]
    assert user_bucket.get_bucket_info().name == BUCKET
    with pytest.raises(oss2.exceptions.AccessDenied):
        user_bucket.put_object("model/new.bin", b"no")
    with pytest.raises(oss2.exceptions.AccessDenied):
        user_bucket.delete_object("model/w.bin")
    with pytest.raises(oss2.exceptions.AccessDenied):
        user_bucket.put_bucket_policy(grant("0.0.0.0/0", ["oss:*"]))

    # anonymous requests match Principal "*" too once a condition is present
    anon = oss2.Bucket(oss2.AnonymousAuth(), user_bucket.endpoint, BUCKET)
    assert anon.get_object("model/w.bin").read() == b"weights"

    oss_lab_bucket.delete_bucket_policy()
    with pytest.raises(oss2.exceptions.NoSuchBucketPolicy):
        oss_lab_bucket.get_bucket_policy()
    with pytest.raises(oss2.exceptions.AccessDenied):
        user_bucket.get_object("model/w.bin")


def test_policy_granting_another_ip_denies(oss_lab_bucket, user_bucket):
    oss_lab_bucket.put_object("model/w.bin", b"weights")
    oss_lab_bucket.put_bucket_policy(grant("203.0.113.7/32", ["oss:GetObject", "oss:ListObjects"]))
    with pytest.raises(oss2.exceptions.AccessDenied):
        user_bucket.get_object("model/w.bin")
    with pytest.raises(oss2.exceptions.AccessDenied):
        user_bucket.list_objects()
    # the owner needs no Allow
    assert oss_lab_bucket.get_object("model/w.bin").read() == b"weights"


def test_policy_for_a_named_principal(oss_lab_bucket, user_bucket, oss_lab_keys):
    oss_lab_bucket.put_object("k", b"v")
    oss_lab_bucket.put_bucket_policy(
        json.dumps(
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": [oss_lab_keys.user_uid],
                        "Action": ["oss:Get*"],
                        "Resource": RESOURCES,
                    }
                ],
            }
        )
    )
    assert user_bucket.get_object("k").read() == b"v"
    anon = oss2.Bucket(oss2.AnonymousAuth(), user_bucket.endpoint, BUCKET)
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.get_object("k")


def test_source_ip_without_source_vpc_is_rejected(oss_lab_bucket):
    policy = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": ["*"],
                "Action": ["oss:GetObject"],
                "Resource": RESOURCES,
                "Condition": {"IpAddress": {"acs:SourceIp": ["127.0.0.1/32"]}},
            }
        ],
    }
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        oss_lab_bucket.put_bucket_policy(json.dumps(policy))
    assert ei.value.status == 400 and ei.value.ec == "0030-00000008"
    with pytest.raises(oss2.exceptions.NoSuchBucketPolicy):
        oss_lab_bucket.get_bucket_policy()

    # with the VPC rule from the seed (traffic from inside a VPC: StringEquals on the VPC id) it is accepted
    policy["Statement"][0]["Condition"]["StringEquals"] = {"acs:SourceVpc": ["vpc-t4nlw426y44rd3iq4xxxx"]}
    oss_lab_bucket.put_bucket_policy(json.dumps(policy))


def test_vpc_only_grant_does_not_match_requests_from_outside_a_vpc(oss_lab_bucket, user_bucket):
    oss_lab_bucket.put_object("k", b"v")
    policy = json.loads(grant("127.0.0.1/32", ["oss:GetObject"]))
    del policy["Statement"][0]["Condition"]["StringNotLike"]
    policy["Statement"][0]["Condition"]["StringEquals"] = {"acs:SourceVpc": ["vpc-t4nlw426y44rd3iq4xxxx"]}
    oss_lab_bucket.put_bucket_policy(json.dumps(policy))
    with pytest.raises(oss2.exceptions.AccessDenied):  # the lab's clients are outside any VPC
        user_bucket.get_object("k")


@pytest.mark.parametrize(
    "doc",
    [
        "not json",
        json.dumps({"Version": "2", "Statement": []}),
        json.dumps(
            {
                "Version": "1",
                "Statement": [{"Effect": "Maybe", "Principal": ["*"], "Action": ["oss:*"], "Resource": RESOURCES}],
            }
        ),
        json.dumps(
            {
                "Version": "1",
                "Statement": [{"Effect": "Allow", "Principal": ["*"], "Action": ["ecs:*"], "Resource": RESOURCES}],
            }
        ),
        json.dumps(
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": ["*"],
                        "Action": ["oss:*"],
                        "Resource": ["acs:oss:*:1:another-bucket/*"],
                    }
                ],
            }
        ),
        json.dumps(
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": ["*"],
                        "Action": ["oss:*"],
                        "Resource": RESOURCES,
                        "Condition": {
                            "IpAddress": {"acs:SourceIp": ["not-an-ip"]},
                            "StringNotLike": {"acs:SourceVpc": "vpc-*"},
                        },
                    }
                ],
            }
        ),
    ],
)
def test_invalid_policies_are_rejected(oss_lab_bucket, doc):
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        oss_lab_bucket.put_bucket_policy(doc)
    assert ei.value.status == 400 and ei.value.code == "InvalidPolicyDocument"


def test_deny_applies_to_the_owner_when_conditioned(oss_lab_bucket, user_bucket):
    oss_lab_bucket.put_object("keep.txt", b"k")
    deny_unconditioned = {
        "Version": "1",
        "Statement": [{"Effect": "Deny", "Principal": ["*"], "Action": ["oss:DeleteObject"], "Resource": RESOURCES}],
    }
    oss_lab_bucket.put_bucket_policy(json.dumps(deny_unconditioned))
    # Principal "*" without a Condition does not bind the bucket owner (OSS's documented rule)
    oss_lab_bucket.put_object("gone.txt", b"g")
    oss_lab_bucket.delete_object("gone.txt")

    deny_conditioned = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": ["*"],
                "Action": ["oss:DeleteObject"],
                "Resource": RESOURCES,
                "Condition": {"StringNotLike": {"acs:SourceVpc": "vpc-*"}},
            },
            {
                "Effect": "Allow",
                "Principal": ["*"],
                "Action": ["oss:*"],
                "Resource": RESOURCES,
                "Condition": {
                    "IpAddress": {"acs:SourceIp": ["127.0.0.0/8"]},
                    "StringNotLike": {"acs:SourceVpc": "vpc-*"},
                },
            },
        ],
    }
    oss_lab_bucket.put_bucket_policy(json.dumps(deny_conditioned))
    with pytest.raises(oss2.exceptions.AccessDenied):
        oss_lab_bucket.delete_object("keep.txt")
    with pytest.raises(oss2.exceptions.AccessDenied):  # Deny beats the Allow for the RAM user too
        user_bucket.delete_object("keep.txt")
    assert user_bucket.get_object("keep.txt").read() == b"k"  # ... while the Allow still grants reads
    # the owner can always take the policy away again
    oss_lab_bucket.delete_bucket_policy()
    oss_lab_bucket.delete_object("keep.txt")


def test_another_account_is_not_the_owner(oss_lab_bucket, oss_lab_bucket_for, oss_lab_keys):
    other = oss_lab_bucket_for(oss2.Auth(oss_lab_keys.other_owner_id, oss_lab_keys.other_owner_secret))
    with pytest.raises(oss2.exceptions.AccessDenied):
        other.get_bucket_info()
    oss_lab_bucket.put_bucket_policy(
        grant("127.0.0.1/32", ["oss:GetBucketInfo"], principal=[oss_lab_keys.other_owner_uid])
    )
    assert other.get_bucket_info().owner.id == UID
