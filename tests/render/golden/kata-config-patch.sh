#!/bin/bash
# KATA-1.8: point kata at the guest hooks. The edit, in the [hypervisor.<name>] table of
#   /etc/kata-containers/configuration.toml
# is this one line:
#   guest_hook_path = "/usr/share/oci/hooks"
# The shipped file has it commented out (#guest_hook_path = ...) inside that table: the line is replaced where it is
# (or added right under the table header), never appended at the end of the file, where it would fall into another
# table and be ignored. The file is first copied to <file>.bak.<time>, then replaced atomically; a second run
# changes nothing. The other keys of the virtCCA passthrough setup are only checked (warnings), never changed.
set -euo pipefail
CONFIG=/etc/kata-containers/configuration.toml
SETTING='guest_hook_path = "/usr/share/oci/hooks"'
KEY=guest_hook_path

if [ ! -f "$CONFIG" ]; then
    echo "$CONFIG does not exist: edit the file kata really loads (kata-runtime --show-default-config-paths;" \
        "KATA_CONF_FILE), or set answers.kata.config_path to it" >&2
    exit 1
fi

tmp=$(mktemp "$CONFIG.cai-XXXXXX")
trap 'rm -f "$tmp"' EXIT
status=0
KEY="$KEY" SETTING="$SETTING" awk '
    function is_header(s) { return s ~ /^[[:space:]]*\[\[?[[:space:]]*[A-Za-z0-9_." -]+\]\]?[[:space:]]*(#.*)?$/ }
    function is_hv(s) { return s ~ /^[[:space:]]*\[[[:space:]]*hypervisor\.[A-Za-z0-9_-]+[[:space:]]*\][[:space:]]*(#.*)?$/ }
    BEGIN { key = ENVIRON["KEY"]; setting = ENVIRON["SETTING"]; active = "^[[:space:]]*" key "[[:space:]]*=" }
    FNR == NR {
        # pass 1: find the hypervisor table and the line to replace (a set key wins over a commented one)
        if (is_header($0)) { in_hv = is_hv($0); if (in_hv) { tables++; header = FNR } }
        else if (in_hv && !set_at && $0 ~ active) set_at = FNR
        else if (in_hv && !commented_at && $0 ~ "^[[:space:]]*#[[:space:]]*" key "[[:space:]]*=") commented_at = FNR
        next
    }
    FNR == 1 { at = set_at ? set_at : commented_at }
    at && FNR == at { print setting; next }
    { print }
    !at && FNR == header { print setting }
    END {
        if (tables != 1) { printf "expected one [hypervisor.<name>] table, found %d\n", tables > "/dev/stderr"; exit 3 }
    }
' "$CONFIG" "$CONFIG" > "$tmp" || status=$?
if [ "$status" -ne 0 ]; then
    echo "$CONFIG was not changed" >&2
    exit "$status"
fi

if cmp -s "$CONFIG" "$tmp"; then
    echo "$CONFIG already has: $SETTING (nothing changed)"
else
    backup="$CONFIG.bak.$(date +%Y%m%d-%H%M%S)"
    while [ -e "$backup" ]; do backup="$backup.1"; done
    cp -p "$CONFIG" "$backup"
    chmod --reference="$CONFIG" "$tmp"
    mv -f "$tmp" "$CONFIG"
    trap - EXIT
    echo "set $SETTING in $CONFIG (the previous file is $backup):"
    diff -u "$backup" "$CONFIG" || true
fi

# the rest of the virtCCA GPU passthrough setup the procedure assumes: reported, not changed
keys='^[[:space:]]*(kernel_params|cold_plug_vfio|hot_plug_vfio|pcie_root_port|default_memory)[[:space:]]*='
grep -q -E '^[[:space:]]*kernel_params[[:space:]]*=.*virtcca_cvm_guest=1' "$CONFIG" ||
    echo "warning: kernel_params lacks virtcca_cvm_guest=1: the guest does not start as a virtCCA confidential VM" >&2
grep -q -E '^[[:space:]]*(cold_plug_vfio|hot_plug_vfio)[[:space:]]*=' "$CONFIG" ||
    echo "warning: neither cold_plug_vfio nor hot_plug_vfio is set: the GPU is not plugged into the guest" \
        "(e.g. cold_plug_vfio = \"root-port\" with pcie_root_port = 1)" >&2
memory=$(sed -n -E 's/^[[:space:]]*default_memory[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p' "$CONFIG" | head -n 1)
if [ -z "$memory" ] || [ "$memory" -lt 20480 ]; then
    echo "warning: default_memory is ${memory:-unset} MiB: a GPU guest running vLLM needs more (e.g. 20480)" >&2
fi
grep -n -E "$keys|^[[:space:]]*$KEY[[:space:]]*=" "$CONFIG" || true
