#!/bin/bash
# CAI-4.2: add these entries to the ALB access-control policy group (IP 条目):
#   203.0.113.8/32       the instance VPC's public IP
#   198.51.100.9/32      the inference client's egress IP
# Then on the ALB instance found below: switch off configuration-change protection (关闭配置修改保护),
# and on its listener enable access control with the policy group as a whitelist.
set -euo pipefail
# The ALB instance ID (alb-…):
kubectl get ing --namespace default kbs-ingress -o 'jsonpath={.status.loadBalancer.ingress[0].hostname}' | cut -d'.' -f1 | sed 's/[^a-zA-Z0-9-]//g'
