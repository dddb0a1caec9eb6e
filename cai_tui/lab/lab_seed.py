"""Seeding the lab: secret files, the demo upload (or an empty bucket), ``credentials.json`` and the lab recipe."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from .demo import (
    DEMO_BUCKET,
    DEMO_KEY_URI,
    DEMO_PREFIX,
    DEMO_SECRET_NAME,
    DemoSeed,
    write_private,
)
from .lab_basics import ADMIN_KEY_FILE, DEMO_ACCOUNT_UID, DEMO_BUCKET_POLICY, KMS_INSTANCE_ID, REGION, LabKeys, _iso
from .lab_state import LabState


class LabSeeding(LabState):
    def _path(self, name: str) -> Path:
        return self._state_dir / name

    def _write_secret_files(self, keys: LabKeys) -> None:
        for name, value in (
            ("oss_access_key_id", keys.oss_access_key_id),
            ("oss_access_key_secret", keys.oss_access_key_secret),
            ("oss_sts_access_key_id", keys.oss_sts_access_key_id),
            ("oss_sts_access_key_secret", keys.oss_sts_access_key_secret),
            ("oss_sts_token", keys.oss_sts_token),
            ("kms_access_key_id", keys.kms_access_key_id),
            ("kms_access_key_secret", keys.kms_access_key_secret),
        ):
            write_private(self._path(name), value.encode("ascii"))
        write_private(self._path(ADMIN_KEY_FILE), keys.admin_private_pem)

    def _empty_bucket(self) -> int:
        """The bare seed's bucket: no objects, no multipart uploads, no policy; returns how many objects went."""
        assert self._oss is not None
        store = self._oss.store
        removed = 0
        for upload in store.uploads(DEMO_BUCKET):
            store.abort_upload(upload.upload_id)
        while True:
            batch = [o.key for o in store.iter_objects(DEMO_BUCKET, "", "")]
            if not batch:
                break
            for key in batch:
                removed += bool(store.delete_object(DEMO_BUCKET, key))
        store.set_policy(DEMO_BUCKET, None)
        return removed

    def _upload_demo(self, keys: LabKeys, demo: DemoSeed) -> int:
        """Put the cipherdir into the lab OSS through oss2 (unchanged objects are skipped); returns the upload count."""
        import oss2

        assert self._oss is not None
        session = oss2.Session()
        session.session.trust_env = False  # loopback only: never through a proxy from the environment
        bucket = oss2.Bucket(
            oss2.Auth(keys.oss_access_key_id, keys.oss_access_key_secret),
            self._oss.endpoint,
            DEMO_BUCKET,
            session=session,
            connect_timeout=10,
            region=REGION,
        )
        existing = {o.key: o.etag for o in oss2.ObjectIterator(bucket, prefix=DEMO_PREFIX)}
        wanted = demo.cipher_files()
        uploaded = 0
        for key, path in wanted:
            data = path.read_bytes()
            if existing.get(key, "").upper() == hashlib.md5(data).hexdigest().upper():
                continue
            bucket.put_object(key, data)
            uploaded += 1
        for key in sorted(set(existing) - {k for k, _ in wanted}):
            bucket.delete_object(key)
        # CAI-4.1 as the seed does it: the bucket policy grants the "instance" (here: loopback) read access.
        bucket.put_bucket_policy(json.dumps(DEMO_BUCKET_POLICY))
        return uploaded

    def _write_credentials(self, keys: LabKeys, demo: DemoSeed) -> None:
        doc = {
            "oss_access_key_id": keys.oss_access_key_id,
            "oss_access_key_secret": keys.oss_access_key_secret,
            "oss_sts_token": keys.oss_sts_token,
            "oss_sts_access_key_id": keys.oss_sts_access_key_id,
            "oss_sts_access_key_secret": keys.oss_sts_access_key_secret,
            "oss_sts_expiration": _iso(keys.oss_sts_expires_at),
            "oss_region": REGION,
            "oss_endpoint": self.oss_endpoint,
            "oss_bucket": DEMO_BUCKET,
            "model_prefix": DEMO_PREFIX,
            "model_password_file": str(demo.password_file),
            "model_dir": str(demo.model_dir),
            "cipher_dir": str(demo.cipher_dir),
            "kms_access_key_id": keys.kms_access_key_id,
            "kms_access_key_secret": keys.kms_access_key_secret,
            "kms_region": REGION,
            "kms_endpoint": self.kms_endpoint,
            "kms_instance_id": KMS_INSTANCE_ID,
            "kms_secret_name": DEMO_SECRET_NAME,
            "kbs_admin_private_key_path": str(self._path(ADMIN_KEY_FILE)),
            "trustee_url": self.trustee_url,
            "model_key_id": DEMO_KEY_URI,
            "protocol_version": self._settings.protocol_version,
        }
        write_private(self.credentials_path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))

    def recipe_text(self, demo: DemoSeed) -> str:
        """The lab recipe: ``recipes/lab-demo.yaml`` (comments kept) with this lab's endpoints and paths."""
        from ruamel.yaml import YAML

        from ..resources import data_dir

        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 4096
        yaml.indent(mapping=2, sequence=4, offset=2)
        doc = yaml.load((data_dir("recipes") / "lab-demo.yaml").read_text("utf-8"))
        answers = doc["answers"]

        def ref(name: str | Path) -> str:
            return f"file:{self._path(str(name)) if isinstance(name, str) else name}"

        answers["model"].update(
            source="local",
            local_dir=str(demo.model_dir),
            encryption_method="gocryptfs",
            password=ref(demo.password_file),
            cipher_dir=str(demo.cipher_dir),
        )
        answers["oss"].update(
            account_uid=DEMO_ACCOUNT_UID,
            region=REGION,
            endpoint=self.oss_endpoint,
            bucket_path=f"{DEMO_BUCKET}:/{DEMO_PREFIX}",
            access_key_id=ref("oss_access_key_id"),
            access_key_secret=ref("oss_access_key_secret"),
        )
        answers["kms"].update(
            region=REGION,
            instance_id=KMS_INSTANCE_ID,
            endpoint=self.kms_endpoint,
            secret_name=DEMO_SECRET_NAME,
            access_key_id=ref("kms_access_key_id"),
            access_key_secret=ref("kms_access_key_secret"),
        )
        answers["trustee"].update(
            url=self.trustee_url,
            model_key_id=DEMO_KEY_URI,
            protocol_version=self._settings.protocol_version,
            admin_private_key=ref(ADMIN_KEY_FILE),
        )
        answers["instance"]["public_ip"] = "127.0.0.1"
        if self._instance is not None:
            service = answers["service"]
            service.ca.items.pop(list(service)[-1], None)  # the blank line before targets: would split the section
            service.update(self._instance.service_answers())
            doc["targets"]["instance"] = "local"
            doc["targets"]["client"] = "local"
            from ..labstack.instance import WAIVERS

            doc["waivers"] = [{"check": check, "reason": reason} for check, reason in WAIVERS]
        buf = io.StringIO()
        yaml.dump(doc, buf)
        return buf.getvalue()

    def _write_recipe(self, demo: DemoSeed) -> None:
        from ..recipe import loads_recipe, save_recipe

        path = self.recipe_path
        loaded = loads_recipe(self.recipe_text(demo), name=str(path), path=path)  # RecipeError if the lab broke it
        save_recipe(loaded, path, backup=False)
