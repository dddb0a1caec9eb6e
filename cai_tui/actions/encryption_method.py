"""CAI-1.2: what the chosen encryption method still needs from the recipe (gocryptfs: the password; Sam: the SDK, the
key and its ID). Nothing here resolves a secret: only whether the answers are set."""

from __future__ import annotations

from typing import Any


def method_lacks(answers: Any) -> list[str]:
    """One line per answer the chosen method needs and the recipe does not set (empty when complete)."""
    model = answers.model
    if model.source == "public-encrypted":
        return []  # the published ciphertext and password: model.use_public sets what is needed
    if model.encryption_method == "sam":
        lacks = []
        if model.sam.sdk_dir is None:
            lacks.append("model.sam.sdk_dir is not set (the unpacked RAI_SAM_SDK folder)")
        if model.sam.key is None:
            lacks.append(
                "model.sam.key is not set (a reference to the Sam key, 4–128 bytes: file:PATH, env:NAME, prompt)"
            )
        if model.sam.key_id is None:
            lacks.append("model.sam.key_id is not set (8–48 bytes, e.g. LD_Demo_0001)")
        return [f"sam: {x}" for x in lacks]
    if model.password is None:
        return [
            "gocryptfs: model.password is not set (a reference to the key: file:~/cachefs-password, env:NAME, prompt)"
        ]
    return []
