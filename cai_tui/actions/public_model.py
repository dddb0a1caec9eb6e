"""CAI-1.0: the seed's quick-trial shortcut — the public, pre-encrypted Qwen2.5-3B-Instruct in OSS.

Instead of downloading, encrypting and uploading a model (CAI-1.1 … CAI-1.7), the recipe can point at Alibaba's
public-read copy in ``conf-ai`` (cn-beijing): ``conf-ai:/qwen2.5-3b-gocryptfs/`` (gocryptfs) or
``conf-ai:/qwen2.5-3b-sam/`` (Sam). Its published password, ``alibaba@1688``, must then be the secret stored in KMS
(CAI-2.6), because that is what the instance fetches through Trustee to decrypt it.

The password never goes into the recipe: :func:`write_password_file` writes it to a 0600 file and the recipe gets a
``file:`` reference, as for any other secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

PUBLIC_BUCKET = "conf-ai"
PUBLIC_REGION = "cn-beijing"
PUBLIC_ENDPOINT = "https://oss-cn-beijing-internal.aliyuncs.com"
PUBLIC_PASSWORD = "alibaba@1688"  # published in the seed document (CAI-1.0); not a secret of the user's
PUBLIC_PATHS = {"gocryptfs": f"{PUBLIC_BUCKET}:/qwen2.5-3b-gocryptfs/", "sam": f"{PUBLIC_BUCKET}:/qwen2.5-3b-sam/"}

Method = Literal["gocryptfs", "sam"]


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.field}: {self.old!r} → {self.new!r}"


def explanation(method: Method, password_ref: str | None) -> str:
    secret = (
        f"the recipe refers to it as {password_ref}"
        if password_ref
        else "write it to a file readable only by you and refer to it as file:PATH in answers.model.password"
    )
    return (
        f"The public model is already encrypted ({method}); skip CAI-1.1…1.7 (download, encrypt, upload). "
        f"Its published password is {PUBLIC_PASSWORD!r}: store exactly that as the KMS secret "
        "(answers.kms.secret_name, CAI-2.6) so the instance can decrypt it; "
        f"{secret}. The bucket is public-read in {PUBLIC_REGION}: the instance must run in {PUBLIC_REGION} "
        f"to use the -internal endpoint {PUBLIC_ENDPOINT}."
    )


def use_public(loaded: Any, method: Method, *, password_ref: str | None = None) -> list[Change]:
    """Point ``loaded.recipe`` (a cai recipe) at the public model; returns what changed (empty: already there).

    The recipe object is changed in place (validated by pydantic); save it with :func:`cai_tui.recipe.save_recipe`,
    which keeps the file's comments."""
    from ..recipe import CaiRecipe

    recipe = loaded.recipe
    if not isinstance(recipe, CaiRecipe):
        raise ValueError(f"the public model belongs to the cai flow; this recipe's flow is {recipe.flow!r}")
    if method not in PUBLIC_PATHS:
        raise ValueError(f"--method must be gocryptfs or sam, not {method!r}")
    from ..recipe.draft import Draft

    wanted: list[tuple[str, str]] = [
        ("model.source", "public-encrypted"),
        ("model.encryption_method", method),
        ("oss.bucket_path", PUBLIC_PATHS[method]),
        ("oss.region", PUBLIC_REGION),
        ("oss.endpoint", PUBLIC_ENDPOINT),
    ]
    if password_ref is not None:
        wanted.append(("model.password" if method == "gocryptfs" else "model.sam.key", password_ref))
    draft = Draft(loaded)  # each set is validated with the whole recipe; loaded.recipe follows the draft
    changes: list[Change] = []
    for path, value in wanted:
        old_text = draft.get(path).text
        if old_text != value:
            problem = draft.set(path, value)
            if problem is not None:
                raise ValueError(f"{problem.field}: {problem.message}")
            changes.append(Change(f"answers.{path}", old_text, value))
    return changes


def write_password_file(path: str | os.PathLike[str]) -> str:
    """Write the public password to ``path`` (mode 0600, never over an existing file with other content);
    return the ``file:`` reference for the recipe."""
    target = Path(os.path.expanduser(os.fspath(path)))
    if target.exists():
        try:
            current = target.read_text("utf-8").split("\n", 1)[0].rstrip("\r")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != PUBLIC_PASSWORD:
            raise FileExistsError(f"{target} exists and holds something else; choose another path")
        os.chmod(target, 0o600)
    else:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (PUBLIC_PASSWORD + "\n").encode("utf-8"))
        finally:
            os.close(fd)
    return f"file:{target}"


def default_password_path() -> Path:
    from .. import paths

    return paths.config_dir() / "public-model-password"
