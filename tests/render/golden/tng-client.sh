#!/bin/bash
# CAI-6.2: TNG 1.0.3 client (schema checked for this version). It stays in the foreground,
# serving an HTTP CONNECT proxy on 127.0.0.1:41000. In another terminal (CAI-6.3):
#   export all_proxy=http://127.0.0.1:41000
set -euo pipefail
docker run --rm \
    --network=host \
    confidential-ai-registry.cn-shanghai.cr.aliyuncs.com/product/tng:1.0.3 \
    tng launch --config-content '{
    "add_ingress": [
        {
            "http_proxy": {
                "proxy_listen": {
                    "host": "127.0.0.1",
                    "port": 41000
                }
            },
            "verify": {
                "as_addr": "http://alb-example.cn-hangzhou.alb.aliyuncsslb.com/trustee/as/",
                "policy_ids": [
                    "default"
                ]
            }
        }
    ]
}'
