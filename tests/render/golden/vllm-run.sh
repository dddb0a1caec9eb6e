#!/bin/bash
# CAI-5.3: start vLLM on the decrypted model (the CAI stack must be Healthy first).
# Ready when Uvicorn listens on port 8080; clients ask for the model "/tmp/model".
set -euo pipefail
docker run --rm \
    --net host \
    -v /tmp/model:/tmp/model \
    --gpus all \
    egslingjun-registry.cn-wulanchabu.cr.aliyuncs.com/egslingjun/llm-inference:vllm0.5.4-deepgpu-llm24.7-pytorch2.4.0-cuda12.4-ubuntu22.04 \
    python3 -m vllm.entrypoints.openai.api_server --model=/tmp/model --trust-remote-code --port 8080
