#!/bin/bash
# KATA-5.3: run inside the container (needs outbound network to fetch the model); then ask it with
#   curl http://127.0.0.1:8000/v1/chat/completions (model "Qwen1.5-1.8B-Chat")
set -euo pipefail
VLLM_USE_MODELSCOPE=True python3 -m vllm.entrypoints.openai.api_server --model qwen/Qwen1.5-1.8B-Chat --trust-remote-code \
    --host 0.0.0.0 --port 8000 \
    --served-model-name Qwen1.5-1.8B-Chat \
    --gpu-memory-utilization 0.95
