"""CAI-4.1: the bucket policy for the instance — a thin renderer over :mod:`cai_tui.clients.oss_policy`."""

from __future__ import annotations

from ..recipe import CaiRecipe
from ..recipe.types import parse_bucket_path
from .base import Prompter, Rendered, Renderer, RenderError


class BucketPolicy(Renderer):
    kind = "bucket-policy"
    title = "OSS bucket policy granting the instance read access (CAI-4.1)"
    flow = "cai"
    default_path = "~/bucket-policy.json"
    mode = 0o644

    def render(self, recipe: CaiRecipe, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        from ..clients.oss import OssInputError
        from ..clients.oss_policy import render_bucket_policy

        self._check_flow(recipe)
        a = recipe.answers
        bucket, _ = parse_bucket_path(a.oss.bucket_path)
        ips = [ip for ip in (a.instance.public_ip,) if ip]
        try:
            text = render_bucket_policy(bucket, a.oss.account_uid or "", ips)
        except OssInputError as e:
            raise RenderError(str(e)) from None
        return self.done(text)
