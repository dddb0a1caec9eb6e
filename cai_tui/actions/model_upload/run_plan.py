"""Encryption set-up and planning of an upload run: the gocryptfs key and directory IVs (journalled before anything is
uploaded), and the list of objects to put (encrypted names, ``gocryptfs.diriv``, long-name files, the config)."""

from __future__ import annotations

import os

from ...clients.oss import oss_errors
from .journal import JournalState
from .objects import _Obj
from .options import MANIFEST_NAME, UploadInputError
from .run_base import _RunBase


class _Planning(_RunBase):
    def _crypto(self, state: JournalState) -> None:
        from ...gocryptfs import GocryptfsConfig, NameCipher, WrongPassword, create_config
        from ...gocryptfs.content import ContentCipher

        assert self.opt.password is not None
        if state.conf is not None:
            config = GocryptfsConfig.from_json(state.conf)
            try:
                master_key = config.decrypt_master_key(self.opt.password)
            except WrongPassword:
                raise UploadInputError(
                    "the password does not open the gocryptfs config of the interrupted upload being resumed; give "
                    f"the same password as before, or start over by removing {self.state_dir}"
                ) from None
        else:
            config, master_key = create_config(self.opt.password, scrypt_logn=self.opt.scrypt_logn)
            self.journal.append({"t": "conf", "text": config.to_json()})
        keys = config.keys(master_key)
        self._names = NameCipher(keys.names, raw64=config.raw64, long_name_max=config.effective_long_name_max)
        self._content = ContentCipher(keys.content)
        self._conf_text = config.to_json()
        for d in self.tree.dirs:
            if d not in state.dirivs:
                iv = _new_iv()
                self.journal.append({"t": "diriv", "dir": d, "iv": iv.hex()})

    def _plan(self) -> None:
        if not self.encrypt:
            for f in self.tree.files:
                try:
                    f.rel.encode("utf-8")
                except UnicodeEncodeError:
                    raise UploadInputError(
                        f"{f.path}: the file name is not UTF-8, which OSS object names must be; rename it"
                    ) from None
                self.objects.append(_Obj(self.prefix + f.rel, f.size, f.rel, src=f))
            return
        from ...gocryptfs import cipher_size
        from ...gocryptfs.names import CONF_NAME, DIRIV_NAME, LONGNAME_SUFFIX

        self.tree.files = [f for f in self.tree.files if f.rel != MANIFEST_NAME]  # a fresh one is written
        ivs = self.journal.state.dirivs
        cdir: dict[str, str] = {"": ""}  # plaintext dir -> cipher path ("" or ending in "/")
        meta: list[_Obj] = []

        def place(rel: str) -> str:
            parent, _, name = rel.rpartition("/")
            disk, long_name = self._names.disk_name(os.fsencode(name), ivs[parent])
            path = cdir[parent] + disk
            if long_name is not None:
                meta.append(
                    _Obj(self.prefix + path + LONGNAME_SUFFIX, len(long_name), rel + " (name)", data=long_name.encode())
                )
            return path

        for d in self.tree.dirs:
            if d:
                cdir[d] = place(d) + "/"
            meta.append(_Obj(self.prefix + cdir[d] + DIRIV_NAME, len(ivs[d]), (d or ".") + " (diriv)", data=ivs[d]))
        files = [
            _Obj(self.prefix + place(f.rel), cipher_size(f.size), f.rel, src=f, encrypted=True) for f in self.tree.files
        ]
        self._manifest_key = self.prefix + place(MANIFEST_NAME)
        conf = self._conf_text.encode("utf-8")
        self.objects = meta + files + [_Obj(self.prefix + CONF_NAME, len(conf), CONF_NAME, data=conf)]

    def _refuse_non_empty_prefix(self) -> None:
        with oss_errors(f"listing oss://{self.bucket.bucket_name}/{self.prefix}", self.bucket):
            res = self.bucket.list_objects(prefix=self.prefix, max_keys=10)
        keys = [o.key for o in res.object_list if o.key != self.marker_key]
        if keys:
            raise UploadInputError(
                f"oss://{self.bucket.bucket_name}/{self.prefix} already holds objects ({', '.join(keys[:3])}"
                f"{', …' if len(keys) > 3 or res.is_truncated else ''}); an encrypted upload needs an empty prefix, "
                "because a new gocryptfs key makes anything already there unreadable: choose another prefix or delete "
                f"them first (ossutil rm -r oss://{self.bucket.bucket_name}/{self.prefix})"
            )


def _new_iv() -> bytes:
    while True:
        iv = os.urandom(16)
        if any(iv):
            return iv
