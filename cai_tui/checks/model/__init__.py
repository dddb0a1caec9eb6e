"""Model checks: the plaintext directory (CAI-1.1), the cipherdir and its password (CAI-1.5), the decrypted model at
MODEL_MOUNT_POINT on the instance (CAI-5.2) and disk space (CAI-3).

Every file is read through a Target, so the same checks work on this machine, over SSH or on a captured rootfs.

One module a check. Importing the package imports them all, in the order the checks register (doctor runs them in it).
The shared names stay importable from here, as before the split.
"""

# isort: off
# Kept in the order the checks register in, so not sorted.
from . import local_dir, encrypted, mounted, disk
# isort: on

from ._common import (
    CONF,
    DIRIV,
    FIX_NESTED,
    LOOK_DOWN_MAX,
    SYSTEM_DISK_SLACK,
    TIB_KIB,
    TOKENIZER_FILES,
    WEIGHT_SUFFIXES,
    ModelDirFacts,
    classify_model_dir,
    nested_model,
)
from .disk import disk_capacity
from .encrypted import model_encrypted, plaintext_root
from .local_dir import model_local_dir
from .mounted import model_mounted

__all__ = [
    "CONF",
    "DIRIV",
    "FIX_NESTED",
    "LOOK_DOWN_MAX",
    "SYSTEM_DISK_SLACK",
    "TIB_KIB",
    "TOKENIZER_FILES",
    "WEIGHT_SUFFIXES",
    "ModelDirFacts",
    "classify_model_dir",
    "disk",
    "disk_capacity",
    "encrypted",
    "local_dir",
    "model_encrypted",
    "model_local_dir",
    "model_mounted",
    "mounted",
    "nested_model",
    "plaintext_root",
]
