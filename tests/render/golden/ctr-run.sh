#!/bin/bash
# KATA-5.1: start the confidential container; inside it, nvidia-smi shows the GPU.
set -euo pipefail
ctr --debug run \
    --runtime io.containerd.kata.v2 \
    --device /dev/vfio/81 \
    -t \
    --with-ns=network:/var/run/netns/vllmnet \
    docker.io/library/vllm-cvm:latest arch /bin/sh
