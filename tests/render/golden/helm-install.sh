#!/bin/bash
# CAI-2.3: install Trustee 1.0.0 as release trustee in namespace default,
# with KMS instance kst-hzz66a0exampleke16pckc (cn-hangzhou) as its key store.
set -euo pipefail
# If the plugin install fails: helm plugin uninstall cm-push, then run this again.
helm plugin list | grep -q '^cm-push' || helm plugin install https://github.com/AliyunContainerService/helm-acr
helm repo add trustee acr://trustee-chart.cn-hangzhou.cr.aliyuncs.com/trustee/trustee
helm repo update
helm install trustee trustee/trustee \
    --version 1.0.0 \
    --set regionId=cn-hangzhou \
    --set kbs.aliyunKms.enabled=true \
    --set kbs.aliyunKms.kmsIntanceId=kst-hzz66a0exampleke16pckc \
    --set-file kbs.aliyunKms.clientKey="$HOME"/kms/clientKey_KAAP.example.json \
    --set-file kbs.aliyunKms.password="$HOME"/kms/clientKey_KAAP.example_Password.txt \
    --set-file kbs.aliyunKms.certPem="$HOME"/kms/PrivateKmsCA_kst-hzz66a0exampleke16pckc.pem \
    --namespace default

# CAI-2.4: the Trustee URL (TRUSTEE_URL in cai.env)
echo http://$(kubectl get AlbConfig alb -o jsonpath='{.status.loadBalancer.dnsname}')/trustee
