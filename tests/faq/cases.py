"""Realistic log lines per FAQ entry, from the upstream sources' own format strings and the failure catalogue.

Every log regex of an entry must match at least one of its lines, and each line must rank its entry first, alone.
"""

from __future__ import annotations

# id -> lines (each a whole log line as a user would see it)
EXAMPLES: dict[str, list[str]] = {
    "recipe-secret-unavailable": [
        "answers.oss.access_key_secret: environment variable OSS_ACCESS_KEY_SECRET is not set (export it, or change the reference)",
        "answers.model.password: secret file /root/cachefs-password does not exist (create it, or change the reference)",
        "answers.oss.session_token: the recipe says `prompt` but there is no terminal to ask on; use env:NAME or file:PATH",
    ],
    # seed FAQ: only the generic wrapper messages (the specific causes live in the area files)
    "cai-oss-failed": [
        "[2025-03-01T08:00:01Z ERROR confidential_data_hub] Error when mounting Aliyun OSS: I/O error",
        "[2025-03-01T08:00:01Z ERROR confidential_data_hub::storage::volume_type::aliyun] OSS mount failed",
        "Error: Secure Mount failed: Failed to mount oss",
    ],
    "cai-cdh-failed": [
        "Error: Get Resource failed",
        "Error: kbs client initialization failed",
    ],
    "cai-cachefs-failed": [
        "Error: Secure Mount failed: Error when mounting Aliyun OSS: Gocryptfs decryption mount failed",
        "[ERROR confidential_data_hub::storage::volume_type::aliyun] gocryptfs failed",
    ],
    # OSS
    "oss-access-denied": [
        "Error when mounting Aliyun OSS: OSS mount failed with stderr: <Code>AccessDenied</Code>",
        "oss2.exceptions.AccessDenied: {'status': 403, 'details': {'Code': 'AccessDenied', 'Message': "
        "'You have no right to access this object because of bucket acl.'}}",
        "ossfs: Failed to check bucket and directory for mount point : Invalid Credentials(host=https://oss-cn-beijing-"
        "internal.aliyuncs.com, message=)",
    ],
    "oss-no-such-bucket": [
        "oss2.exceptions.NoSuchBucket: {'status': 404, 'details': {'Code': 'NoSuchBucket'}}",
        "<Message>The specified bucket does not exist.</Message>",
        "ossfs: Failed to check bucket : Bucket not found(host=https://oss-cn-beijing-internal.aliyuncs.com, message=)",
    ],
    "oss-invalid-access-key": [
        "oss2.exceptions.ServerError: {'status': 403, 'details': {'Code': 'InvalidAccessKeyId'}}",
        "Invalid Credentials(host=https://oss-cn-beijing-internal.aliyuncs.com, message=The OSS Access Key Id you "
        "provided does not exist in our records.)",
    ],
    "oss-signature-mismatch": [
        "oss2.exceptions.SignatureDoesNotMatch: {'status': 403, 'details': {'Code': 'SignatureDoesNotMatch'}}",
        "<Message>The request signature we calculated does not match the signature you provided. Check your key and "
        "signing method.</Message>",
    ],
    "oss-token-expired": [
        "{'status': 403, 'details': {'Code': 'SecurityTokenExpired'}}",
        "<Message>The security token you provided has expired.</Message>",
    ],
    "oss-clock-skew": [
        "{'status': 403, 'details': {'Code': 'RequestTimeTooSkewed'}}",
        "<Message>The difference between the request time and the current time is too large.</Message>",
    ],
    "oss-unreachable": [
        "ossfs: Failed to check bucket and directory for mount point : Unable to connect(host=https://oss-cn-"
        "beijing-internal.aliyuncs.com, message=)",
        "RequestError: HTTPSConnectionPool(host='conf-ai.oss-cn-beijing-internal.aliyuncs.com', port=443): Max "
        "retries exceeded (Caused by NameResolutionError: Failed to resolve: [Errno -2] Name or service not known)",
        "curl: (6) Could not resolve host: oss-cn-beijing-internal.aliyuncs.com",
    ],
    # KMS
    "kms-secret-missing": [
        "failed to get resource from aliyun KMS: Aliyun KMS error: Forbidden.ResourceNotFound: The resource not exists",
    ],
    "kms-client-key-invalid": [
        'Aliyun KMS error: create client_key credential of the kms instance failed: "decrypt PKCS#12 with password '
        'failed"',
        "Error: parse PKCS#12 DER failed",
        "Aliyun KMS error: read kms instance ca cert failed: reqwest::Error { kind: Builder }",
    ],
    "kms-invalid-access-key": [
        "ClientException: InvalidAccessKeyId.NotFound: Specified access key is not found.",
    ],
    "kms-permission-denied": [
        "ClientException: Forbidden.RAM: User not authorized to operate on the specified resource.",
    ],
    "kms-unreachable": [
        "Aliyun KMS error: do request to kms server failed: reqwest::Error { kind: Request }",
        "UnretryableException: kms.cn-hangzhou.aliyuncs.com: [Errno -3] Temporary failure ... could not resolve host",
    ],
    "kms-clock-skew": [
        "ClientException: InvalidTimeStamp.Expired: Specified time stamp or date value is expired.",
    ],
    # Trustee / KBS
    "trustee-unreachable": [
        "WARN kbs_protocol::client::rcar_client: RCAR handshake failed: reqwest::Error { kind: Request, url: "
        '"http://alb-xxx.cn-beijing.alb.aliyuncsslb.com/trustee/kbs/v0/auth", source: hyper_util::client::legacy::'
        'Error(Connect, ConnectError("tcp connect error", Os { code: 111, kind: ConnectionRefused })) }, retry 1...',
        "error sending request for url (http://alb-xxx.cn-beijing.alb.aliyuncsslb.com/trustee/kbs/v0/auth)",
        "RCAR handshake failed: Unable to get token. RCAR handshake retried 5 times. Final attempt failed with: "
        "RcarHandshake(...)",
        "Failed to send /attestation HTTP request to AS (api_version: V1)",
    ],
    "trustee-bad-url": [
        "RCAR handshake failed: builder error for url (10.0.0.8:8999/kbs/v0/auth)",
        "Error: kbs client initialization failed: relative URL without a base",
        "reqwest::Error { kind: Builder, source: BadScheme }",
        'KBS Server Internal Failed, Response: "404 page not found"',
    ],
    "kbs-protocol-mismatch": [
        'RCAR handshake failed: KBS request unauthorized, ErrorInformation { error_type: "https://github.com/'
        'confidential-containers/kbs/errors/AttestationError", detail: "Attestation error: KBS Client Protocol '
        'Version Mismatch: expect =0.4.0 while the request is 0.1.0" }',
        "KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.1.0",
        "Error: failed to parse KBS version",
    ],
    "kbs-resource-missing": [
        'Error: KBS resource not found: KBS resource Not Found (Error 404): ErrorInformation { error_type: "…", '
        'detail: "…" }',
        "[ERROR kbs::api_server] resource not found: default/aliyun/model-decryption-key",
        "failed to get resource from aliyun KMS",
        'KBS Server Internal Failed, Response: ErrorInformation { error_type: "https://github.com/confidential-'
        'containers/kbs/errors/PluginInternalError", detail: "Plugin internal error" }',
    ],
    "kbs-resource-uri-invalid": [
        "Error: resource uri path must be 3 instead of 2",
        'ErrorInformation { error_type: ".../errors/PluginNotFound", detail: "Plugin aliyun not found" }',
        "Request path /kbs/v0/resource/default/model_key is invalid",
        'failed to get resource, GetResource { source: KbsClientError("illegal resource uri: invalid kbs resource '
        'uri, should be kbs://<addr-of-kbs>/<repo>/<type>/<tag>") }',
    ],
    "kbs-policy-deny": [
        'KBS Server Internal Failed, Response: ErrorInformation { error_type: "https://github.com/confidential-'
        'containers/kbs/errors/PolicyDeny", detail: "Access denied by policy" }',
        "error_type: .../errors/PolicyDeny",
        'DEBUG kbs::policy_engine: Evaluated: {"allow": false}',
    ],
    "tee-not-detected": [
        "[2025-03-01T08:00:00Z WARN  attester] No TEE platform detected. Sample Attester will be used.",
        "open /dev/tdx_guest: No such file or directory",
    ],
    "tdx-quote-failed": [
        "get evidence failed: Get TD report via ioctl() failed",
        "TDX Attester: failed to create TSM Report path",
        "Error: Failed to get the quote",
        "TSM provider returned an empty quote",
    ],
    "pccs-unreachable": [
        "Verifier evaluate failed: TDX Verifier: tee_verify_quote failed: 0xe019",
        "tee_verify_quote failed: SGX_QL_NETWORK_ERROR",
        "this error will be returned when it encounters network connectivity problems. Could be due to "
        "sgx_default_qcnl.conf wrong configuration.",
    ],
    "trustee-backend-down": [
        '{"error":"Failed to forward request to KBS"}',
        '{"kbs":{"status":"error","message":"connection refused","timestamp":"2025-03-01T08:00:00Z"}}',
        'KBS Server Internal Failed, Response: "<html><title>503 Service Temporarily Unavailable</title></html>"',
    ],
    # TNG
    "tng-config-invalid": [
        "Error: At least one of 'attest' and 'verify' field and '\"no_ra\": true' should be set for 'add_egress'",
        "Error: The 'no_ra: true' flag should not be used with 'verify' field",
        "Error: Either --config-file or --config-content should be set",
        "Error: Failed to load config",
        "Caused by: unknown field `as_type`, expected `as_addr` or `policy_ids`",
    ],
    "tng-aa-unreachable": [
        "ERROR tng: Failed to connect to Attestation Agent ttrpc endpoint",
        "Failed to get evidence from Attestation Agent",
        "connect unix:///run/confidential-containers/attestation-agent/attestation-agent.sock: No such file or directory",
        'AA socket file "/run/confidential-containers/attestation-agent/attestation-agent.sock" not found',
    ],
    "aa-unreachable": [
        "Attestation Agent token provider error: ttrpc connect failed Nix(ENOENT)",
        "get evidence failed: Attestation Agent evidence provider error: call ttrpc failed",
    ],
    "tng-attestation-rejected": [
        "EAR status is not affirming: got contraindicated for tdx, trustworthiness: …",
        "Policy evaluation failed for policy_id `default`",
        "Attestation service /attestation returned HTTP error (api_version: V1): status=401, response=…",
    ],
    "tng-proxy-down": [
        "curl: (7) Failed to connect to 127.0.0.1 port 41000 after 0 ms: Couldn't connect to server",
        "curl: (56) Proxy CONNECT aborted",
        "curl: (56) Received HTTP code 502 from proxy after CONNECT",
    ],
    # model
    "model-password-wrong": [
        "gocryptfs failed with stderr: Password incorrect.",
        "Password is empty",
    ],
    "model-not-gocryptfs": [
        "Cannot open config file: open /tmp/oss-cipher/gocryptfs.conf: no such file or directory",
        "Invalid cipherdir: stat /tmp/oss-cipher: no such file or directory",
    ],
    "fuse-unavailable": [
        "fs.Mount failed: fusermount exited with code 1",
        "fuse: device not found, try 'modprobe fuse' first",
    ],
    "gocryptfs-missing": [
        "bash: line 1: gocryptfs: command not found",
        'exec: "gocryptfs": executable file not found in $PATH',
    ],
    "model-layout-nested": [
        "ValueError: Invalid repository ID or local directory specified: '/tmp/model'.",
        "OSError: /tmp/model does not appear to have a file named config.json.",
        "ValueError: Could not detect config format for no config file found. Ensure your model has either "
        "config.json (HF format) or params.json (Mistral format).",
    ],
    "model-files-missing": [
        "RuntimeError: Cannot find any model weights with `/tmp/model`",
        "safetensors_rust.SafetensorError: Error while deserializing header: MetadataIncompleteBuffer",
    ],
    "model-not-mounted": [
        "ls: cannot access '/tmp/model': Transport endpoint is not connected",
    ],
    "container-oom-killed": [
        # not a log line: the troubleshooter adds docker inspect's State.OOMKilled in this form (troubleshoot/collect.py)
        "State.OOMKilled=true, exit code 137",
    ],
    "cuda-oom": [
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB",
        "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
        "initializing the engine.",
        "ValueError: The model's max seq len (32768) is larger than the maximum number of tokens that can be stored in "
        "KV cache (21000).",
    ],
    "model-not-served": [
        '{"object":"error","message":"The model `qwen` does not exist.","type":"NotFoundError","code":404}',
    ],
    "inference-unreachable": [
        "curl: (7) Failed to connect to 47.95.1.2 port 8080 after 3 ms: Connection refused",
        "ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 8080): address already in use",
    ],
    # GPU
    "gpu-cc-off": [
        "CC status: OFF",
        "    CC State                   : OFF",
    ],
    "gpu-cc-not-ready": [
        "Confidential Compute GPUs Ready state: not-ready",
        "RuntimeError: CUDA error: system not yet initialized",
    ],
    "gpu-missing": [
        "No devices were found",
        "RuntimeError: No CUDA GPUs are available",
        "RuntimeError: Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG` "
        "to turn on verbose logging to help debug the issue.",
    ],
    "docker-nvidia-runtime-missing": [
        'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].',
        "docker: Error response from daemon: unknown or invalid runtime name: nvidia.",
    ],
    "gpu-missing-in-guest": [
        "[    3.021] NVRM: No NVIDIA GPU found.",
        "nvidia-container-cli: detection error: nvml error: unknown error",
    ],
    "nvml-init-failed": [
        "Failed to initialize NVML: Driver/library version mismatch",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest "
        "NVIDIA driver is installed and running.",
    ],
    "kata-hook-missing": [
        "/bin/sh: nvidia-smi: not found",
        "bash: nvidia-smi: command not found",
        'level=error msg="add guest hook /usr/share/oci/hooks failed: Os { code: 2 }" name=kata-agent',
        "fork/exec /usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh: exec format error",
    ],
    # VFIO / kata / host
    "vfio-no-iommu-group": [
        "qemu-system-aarch64: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: no iommu_group found: "
        "Invalid argument",
        "vfio: failed to setup container for group 81: Failed to set iommu for container: Operation not permitted",
    ],
    "vfio-group-not-viable": [
        "vfio: error, group 81 is not viable, please ensure all devices within the iommu_group are bound to their "
        "vfio bus driver.",
        "Please ensure all devices within the iommu_group are bound to their vfio bus driver.",
    ],
    "vfio-device-missing": [
        "vfio: error opening /dev/vfio/81: failed to open /dev/vfio/81: No such file or directory",
    ],
    "vfio-group-busy": [
        "failed to open /dev/vfio/81: Device or resource busy",
    ],
    "vfio-probe-failed": [
        "[  812.313] vfio-pci: probe of 0000:01:00.0 failed with error -22",
        "[  812.313] vfio-pci 0000:01:00.0: probe with driver vfio-pci failed with error -22",
    ],
    "vfio-dma-limit": [
        "qemu-system-aarch64: VFIO_MAP_DMA failed: No space left on device",
    ],
    "guest-swiotlb-full": [
        "nvidia 0000:00:02.0: swiotlb buffer is full (sz: 524288 bytes), total 32768 (slots), used 32640 (slots)",
    ],
    "virtcca-not-cvm": [
        "qemu-system-aarch64: Normal vm cannot use confidential device.",
        "This system doesn't support Confidential Computing (Guest Protection)",
    ],
    "kata-config-missing": [
        'ctr: failed to create shim task: Cannot find usable config file (config file "/etc/kata-containers/'
        'configuration.toml" unresolvable: file /etc/kata-containers/configuration.toml does not exist)',
    ],
    "kernel-config-missing": [
        "modprobe: FATAL: Module vfio-pci not found in directory /lib/modules/6.6.0-28.0.0.34.oe2403.aarch64",
        "vfio: No available IOMMU models",
        "qemu-system-aarch64: failed to open /dev/vfio/vfio: No such file or directory",
        "# CONFIG_VFIO_PCI is not set",
    ],
    "host-not-arm": [
        "docker: no matching manifest for linux/amd64 in the manifest list entries.",
        "WARNING: The requested image's platform (linux/arm64/v8) does not match the detected host platform "
        "(linux/amd64/v3)",
        "exec /usr/bin/cnitool: exec format error",
    ],
    "kata-container-not-running": [
        "ctr: failed to create shim task: Failed to Check if grpc server is working: rpc error: code = DeadlineExceeded",
        'ctr: container "arch": already exists',
        "ctr: no running task found: task arch not found: not found",
    ],
    "cni-network-broken": [
        'failed to find plugin "bridge" in path [/opt/cni/bin]',
        'no net configuration with name "vllmnet" in /etc/cni/net.d',
        "failed to allocate for range 0: no IP addresses available in range set: 10.88.0.1-10.88.255.254",
        'plugin type="bridge" failed (add): failed to set bridge addr: could not add IP address to "cni0"',
        'failed to Statfs "/var/run/netns/vllmnet": no such file or directory',
    ],
    # machine / tooling
    "docker-too-old": [
        "unknown flag: --gpus",
        "Error response from daemon: client version 1.22 is too old. Minimum supported API version is 1.24",
    ],
    "compose-too-old": [
        "docker: 'compose' is not a docker command.",
        "unknown flag: --wait",
        "(root) Additional property include is not allowed",
    ],
    "cai-container-unhealthy": [
        "dependency failed to start: container cai-docker-cachefs-1 is unhealthy",
        "container cai-docker-oss-1 exited (1)",
    ],
    "disk-too-small": [
        "cp: error writing '/tmp/model/model-00001-of-00002.safetensors': No space left on device",
    ],
}

# Entries that match only on checks, states, or nothing (guides); adding a log pattern means adding examples above.
NO_LOG_PATTERNS = {"cai-tng-failed", "cai-bug-reporter", "trustee-insecure-transport"}
