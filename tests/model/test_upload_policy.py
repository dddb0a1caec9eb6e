"""CAI-4.1 bucket policy (render, preview diff, apply — enforced by the lab OSS for RAM-user keys) and the CAI-1.0
public-model shortcut (``cai-tui model use-public``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, loopback_env

LAB_UID = "1234567890"  # the lab's bucket owner (cai_tui.lab.oss.credentials.DEFAULT_UID)
GOLDEN = """{
  "Version": "1",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": [
        "*"
      ],
      "Action": [
        "oss:GetObject",
        "oss:ListObjects"
      ],
      "Resource": [
        "acs:oss:*:1234567890123456:examplebucket",
        "acs:oss:*:1234567890123456:examplebucket/*"
      ],
      "Condition": {
        "IpAddress": {
          "acs:SourceIp": [
            "203.0.113.7/32",
            "198.51.100.0/24"
          ]
        },
        "StringNotLike": {
          "acs:SourceVpc": "vpc-*"
        }
      }
    },
    {
      "Effect": "Allow",
      "Principal": [
        "*"
      ],
      "Action": [
        "oss:GetObject",
        "oss:ListObjects"
      ],
      "Resource": [
        "acs:oss:*:1234567890123456:examplebucket",
        "acs:oss:*:1234567890123456:examplebucket/*"
      ],
      "Condition": {
        "StringEquals": {
          "acs:SourceVpc": [
            "vpc-bp1example"
          ]
        }
      }
    }
  ]
}
"""


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = loopback_env()
    env["CAI_TUI_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


BUCKET = "policy-test"  # a bucket of its own: the lab seeds lab-models with the demo's policy


def bucket_with(lab: Any, access_key_id: str, secret: str) -> Any:
    from cai_tui.clients.oss import Credentials, make_bucket

    lab.oss_lab.create_bucket(BUCKET)  # owned by LAB_UID; a no-op when it exists
    return make_bucket(lab.oss_endpoint, BUCKET, Credentials(access_key_id, secret), region="cn-lab", timeout=5)


# ------------------------------------------------------------------------------------------------ render
def test_render_matches_the_golden_policy() -> None:
    from cai_tui.actions.bucket_policy import render_bucket_policy

    text = render_bucket_policy(
        "examplebucket", "1234567890123456", ["203.0.113.7", "198.51.100.0/24", "203.0.113.7"], ["vpc-bp1example"]
    )
    assert text == GOLDEN
    doc = json.loads(text)
    ip_statement = doc["Statement"][0]["Condition"]
    assert set(ip_statement) == {"IpAddress", "StringNotLike"}, "OSS rejects SourceIp without a SourceVpc condition"


def test_the_lab_accepts_what_is_rendered(lab: Any) -> None:
    """The lab OSS validates policies as PutBucketPolicy does (SourceIp needs SourceVpc, EC 0030-00000008)."""
    from cai_tui.actions.bucket_policy import render_bucket_policy

    owner = bucket_with(lab, lab.keys.oss_access_key_id, lab.keys.oss_access_key_secret)
    owner.put_bucket_policy(render_bucket_policy(BUCKET, LAB_UID, ["127.0.0.1"], ["vpc-abc123"]))
    import oss2

    with pytest.raises(oss2.exceptions.ServerError) as info:  # the same statement without its VPC half is refused
        doc = json.loads(render_bucket_policy(BUCKET, LAB_UID, ["127.0.0.1"]))
        del doc["Statement"][0]["Condition"]["StringNotLike"]
        owner.put_bucket_policy(json.dumps(doc))
    assert info.value.code == "InvalidPolicyDocument"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uid": "", "ips": ["1.2.3.4"]}, "account UID"),
        ({"uid": "12345678", "ips": []}, "no source to grant"),
        ({"uid": "12345678", "ips": ["1.2.3.999"]}, "is not an IP address"),
        ({"uid": "12345678", "ips": [], "vpc_ids": ["vpx-1"]}, "is not a VPC ID"),
    ],
)
def test_render_rejects_bad_input(kwargs: dict[str, Any], message: str) -> None:
    from cai_tui.actions.bucket_policy import render_bucket_policy
    from cai_tui.clients.oss import OssInputError

    with pytest.raises(OssInputError, match=message):
        render_bucket_policy("examplebucket", **kwargs)


# ------------------------------------------------------------------------------------------------ preview and apply
def test_preview_diff_merge_and_apply(lab: Any) -> None:
    from cai_tui.actions.bucket_policy import apply_policy, preview_policy, render_bucket_policy

    owner = bucket_with(lab, lab.keys.oss_access_key_id, lab.keys.oss_access_key_secret)
    first = render_bucket_policy(BUCKET, LAB_UID, ["127.0.0.1"])
    preview = preview_policy(owner, first)
    assert preview.current == "" and not preview.unchanged
    assert preview.diff.startswith("--- (no policy)\n+++ proposed policy\n")
    assert '+          "acs:SourceIp": [' in preview.diff
    apply_policy(owner, first)
    assert preview_policy(owner, first).unchanged

    second = render_bucket_policy(BUCKET, LAB_UID, ["203.0.113.7"])
    replace = preview_policy(owner, second)
    assert replace.removed_statements == 1
    assert '-            "127.0.0.1/32"' in replace.diff and '+            "203.0.113.7/32"' in replace.diff
    merged = preview_policy(owner, second, merge=True)
    assert merged.removed_statements == 0
    assert len(json.loads(merged.proposed)["Statement"]) == 2


def test_applied_policy_admits_a_ram_user_only_from_the_granted_ip(lab: Any) -> None:
    import oss2

    from cai_tui.actions.bucket_policy import apply_policy, render_bucket_policy

    lab.oss_lab.credentials.add_key("LTAI5tRamUserOfTheTest", "ram-user-secret-0123456789", "user")
    owner = bucket_with(lab, lab.keys.oss_access_key_id, lab.keys.oss_access_key_secret)
    user = bucket_with(lab, "LTAI5tRamUserOfTheTest", "ram-user-secret-0123456789")
    owner.put_object("model/gocryptfs.conf", b"{}")
    with pytest.raises(oss2.exceptions.AccessDenied):
        user.get_object("model/gocryptfs.conf")  # no policy: a RAM user has no rights of its own

    apply_policy(owner, render_bucket_policy(BUCKET, LAB_UID, ["127.0.0.1"]))
    assert user.get_object("model/gocryptfs.conf").read() == b"{}"
    assert [o.key for o in user.list_objects(prefix="model/").object_list] == ["model/gocryptfs.conf"]
    with pytest.raises(oss2.exceptions.AccessDenied):
        user.put_object("model/evil", b"x")  # read-only grant

    apply_policy(owner, render_bucket_policy(BUCKET, LAB_UID, ["203.0.113.7"]))  # another machine's IP
    with pytest.raises(oss2.exceptions.AccessDenied):
        user.get_object("model/gocryptfs.conf")
    assert owner.get_object("model/gocryptfs.conf").read() == b"{}"  # the owner is unaffected


def test_bucket_policy_cli(lab: Any, tmp_path: Path) -> None:
    import oss2

    home = tmp_path / "home"
    owner = bucket_with(lab, lab.keys.oss_access_key_id, lab.keys.oss_access_key_secret)
    base = ("model", "bucket-policy", "--recipe", str(lab.recipe_path), "--bucket", BUCKET)

    text = lab.recipe_path.read_text("utf-8")
    assert "account_uid:" in text  # the lab recipe names the lab OSS's owner; a recipe without it:
    without_uid = tmp_path / "no-uid.yaml"
    without_uid.write_text("\n".join(ln for ln in text.splitlines() if "account_uid:" not in ln) + "\n")
    no_uid = cli("model", "bucket-policy", "--recipe", str(without_uid), "--bucket", BUCKET, home=home)
    assert no_uid.returncode == 2 and "answers.oss.account_uid" in no_uid.stderr

    preview = cli(*base, "--uid", LAB_UID, home=home)  # the IP comes from answers.instance.public_ip
    assert preview.returncode == 0, preview.stderr
    assert "--- (no policy)" in preview.stdout and '"127.0.0.1/32"' in preview.stdout
    assert "not applied (preview only)" in preview.stdout
    with pytest.raises(oss2.exceptions.NoSuchBucketPolicy):
        owner.get_bucket_policy()

    unconfirmed = cli(*base, "--uid", LAB_UID, "--apply", home=home)
    assert unconfirmed.returncode == 2 and "add --yes" in unconfirmed.stderr
    with pytest.raises(oss2.exceptions.NoSuchBucketPolicy):
        owner.get_bucket_policy()

    applied = cli(*base, "--uid", LAB_UID, "--apply", "--yes", home=home)
    assert applied.returncode == 0, applied.stderr
    assert f"applied: bucket {BUCKET} now grants 127.0.0.1" in applied.stdout
    assert json.loads(owner.get_bucket_policy().policy)["Statement"][0]["Condition"]["IpAddress"] == {
        "acs:SourceIp": ["127.0.0.1/32"]
    }
    again = cli(*base, "--uid", LAB_UID, "--apply", "--yes", home=home)
    assert again.returncode == 0 and "already has exactly this policy" in again.stdout

    lab.faults.set("oss-access-denied", True)
    denied = cli(*base, "--uid", LAB_UID, "--ip", "203.0.113.7", home=home)
    assert denied.returncode == 2 and "AccessDenied" in denied.stderr and "Traceback" not in denied.stderr
    assert '"203.0.113.7/32"' in denied.stdout, "the generated policy is still shown for pasting into the console"


# ------------------------------------------------------------------------------------------------ use-public (CAI-1.0)
@pytest.fixture
def seed_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "cai.yaml"
    shutil.copy(REPO_ROOT / "recipes" / "cai-qwen2.5-3b-beijing.yaml", path)
    return path


def test_use_public_preview_changes_nothing(seed_recipe: Path, tmp_path: Path) -> None:
    before = seed_recipe.read_bytes()
    result = cli("model", "use-public", "--recipe", str(seed_recipe), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert (
        "answers.oss.bucket_path: 'examplebucket:/qwen-encrypted/' → 'conf-ai:/qwen2.5-3b-gocryptfs/'" in result.stdout
    )
    assert "not saved (preview only)" in result.stdout
    assert seed_recipe.read_bytes() == before


@pytest.mark.parametrize("method", ["gocryptfs", "sam"])
def test_use_public_rewrites_the_recipe_keeping_comments(seed_recipe: Path, tmp_path: Path, method: str) -> None:
    from cai_tui.recipe import load_recipe

    pw = tmp_path / "secrets" / "public-model-password"
    result = cli(
        "model", "use-public", "--recipe", str(seed_recipe), "--method", method, "--write",
        "--password-file", str(pw), home=tmp_path / "home",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = seed_recipe.read_text()
    assert "alibaba@1688" not in text, "the password never goes into the recipe"
    assert "# CAI-1.2: gocryptfs (v2.4.0 defaults) or sam" in text  # comments kept
    assert "# The seed's Confidential AI setup" in text
    answers = load_recipe(seed_recipe).recipe.answers
    assert answers.oss.bucket_path == f"conf-ai:/qwen2.5-3b-{method}/"
    assert (answers.oss.region, answers.oss.endpoint) == ("cn-beijing", "https://oss-cn-beijing-internal.aliyuncs.com")
    assert (answers.model.source, answers.model.encryption_method) == ("public-encrypted", method)
    secret = answers.model.password if method == "gocryptfs" else answers.model.sam.key
    assert str(secret) == f"file:{pw}"
    assert pw.read_text() == "alibaba@1688\n" and pw.stat().st_mode & 0o777 == 0o600
    assert "store exactly that as the KMS secret" in result.stdout
    assert (seed_recipe.parent / "cai.yaml.bak").exists()

    again = cli("model", "use-public", "--recipe", str(seed_recipe), "--method", method, "--write",
                "--password-file", str(pw), home=tmp_path / "home")  # fmt: skip
    assert again.returncode == 0 and "already points at the public model" in again.stdout


def test_use_public_refuses_other_flows_and_foreign_password_files(tmp_path: Path) -> None:
    kata = tmp_path / "kata.yaml"
    shutil.copy(REPO_ROOT / "recipes" / "kata-virtcca-qwen1.5-1.8b.yaml", kata)
    result = cli("model", "use-public", "--recipe", str(kata), home=tmp_path / "home")
    assert result.returncode == 2 and "needs a cai recipe" in result.stderr

    cai = tmp_path / "cai.yaml"
    shutil.copy(REPO_ROOT / "recipes" / "cai-qwen2.5-3b-beijing.yaml", cai)
    other = tmp_path / "mine"
    other.write_text("my own secret\n")
    result = cli("model", "use-public", "--recipe", str(cai), "--write", "--password-file", str(other),
                 home=tmp_path / "home")  # fmt: skip
    assert result.returncode == 2 and "holds something else" in result.stderr
    assert other.read_text() == "my own secret\n"
