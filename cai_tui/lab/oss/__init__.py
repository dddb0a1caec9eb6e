"""The lab's loopback OSS: real oss2 clients (V1/V2/V4 signatures, STS) cannot tell it from the cloud on the paths the
project uses — buckets, listing, objects (streamed, ranged), multipart uploads, enforced bucket policies, and the
``oss-*`` fault switches."""

from .credentials import OssCredentials
from .server import OssLab

__all__ = ["OssCredentials", "OssLab"]
