"""The lab: loopback Trustee (KBS + AS), OSS and KMS that the real SDKs accept, with fault switches."""
