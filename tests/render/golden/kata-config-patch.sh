#!/bin/bash
# KATA-1.8: point kata at the guest hooks. The edit, in the [hypervisor.<name>] table of
#   /etc/kata-containers/configuration.toml
# is this one line:
#   guest_hook_path = "/usr/share/oci/hooks"
# Kata up to 3.23 ships it commented out (#guest_hook_path = ...), 3.24 and later as guest_hook_path = "" (hooks
# disabled), inside that table: the line is replaced where it is, keeping its trailing comment and the file's line
# endings (or added right under the table header), never appended at the end of the file, where it would fall into
# another table and be ignored. A file TOML refuses because something is written twice (a key set twice in one
# table, a table header written twice) is left alone, each occurrence named as file:line. The file is first copied
# to <file>.bak.<time>, then replaced atomically; a second run changes nothing. The other keys of the virtCCA
# passthrough setup are only checked (warnings), never changed.
set -euo pipefail
CONFIG=/etc/kata-containers/configuration.toml
SETTING='guest_hook_path = "/usr/share/oci/hooks"'
KEY=guest_hook_path

if [ ! -f "$CONFIG" ]; then
    echo "$CONFIG does not exist: edit the file kata really loads (kata-runtime --show-default-config-paths;" \
        "KATA_CONF_FILE), or set answers.kata.config_path to it" >&2
    exit 1
fi

noeol=0
if [ -s "$CONFIG" ] && [ -n "$(tail -c 1 "$CONFIG")" ]; then noeol=1; fi  # no line break after the last line
tmp=$(mktemp "$CONFIG.cai-XXXXXX")
trap 'rm -f "$tmp"' EXIT
status=0
KEY="$KEY" SETTING="$SETTING" FILE="$CONFIG" NOEOL="$noeol" awk '
    function name_of(s) {  # [ a . "b" ] or a . "b" = ... -> a.b
        sub(/^[[:space:]]*\[?\[?[[:space:]]*/, "", s); sub(/[[:space:]]*(\]\]?[[:space:]]*(#.*)?|=.*)$/, "", s)
        gsub(/[[:space:]]*\.[[:space:]]*/, ".", s); gsub(/["\047]/, "", s); return s
    }
    function count(s, pat) { return gsub(pat, "", s) }
    function emit(s) { if (held) printf "%s\n", out; out = s; held = 1 }
    function places(lines,   n, i, part, s) {  # "3 9" -> FILE:3 and FILE:9
        n = split(lines, part, " ")
        for (i = 1; i <= n; i++) s = s (i == 1 ? "" : i == n ? " and " : ", ") file ":" part[i]
        return s
    }
    function times(lines,   n, part) { n = split(lines, part, " "); return n == 2 ? "twice" : n " times" }
    function replaced(s,   cr, ind, rest, q, c, i, n) {
        # the setting, with the old line indentation, trailing comment and line ending
        cr = ""; if (s ~ /\r$/) { cr = "\r"; sub(/\r$/, "", s) }
        match(s, /^[[:space:]]*/); ind = substr(s, 1, RLENGTH)
        rest = substr(s, index(s, "=") + 1)
        sub(/^[[:space:]]*/, "", rest)
        q = substr(rest, 1, 1)
        if (q == "\"" || q == "\047") {  # a string value: skip to its closing quote
            n = length(rest)
            for (i = 2; i <= n; i++) {
                c = substr(rest, i, 1)
                if (q == "\"" && c == "\\") i++
                else if (c == q) break
            }
            rest = substr(rest, i + 1)
        } else rest = index(rest, "#") ? substr(rest, index(rest, "#")) : ""
        if (rest !~ /^[[:space:]]*#/) rest = ""
        return ind setting rest cr
    }
    BEGIN {
        key = ENVIRON["KEY"]; setting = ENVIRON["SETTING"]; file = ENVIRON["FILE"]
        seg = "([A-Za-z0-9_-]+|\"[^\"]*\"|\047[^\047]*\047)"
        dotted = seg "([[:space:]]*\\.[[:space:]]*" seg ")*"
        header_re = "^[[:space:]]*\\[\\[?[[:space:]]*" dotted "[[:space:]]*\\]\\]?[[:space:]]*(#.*)?\r?$"
        key_re = "^[[:space:]]*" dotted "[[:space:]]*="
        commented_re = "^[[:space:]]*#[[:space:]]*" key "[[:space:]]*="
    }
    FNR == NR {
        # pass 1: where things are. The hypervisor table and the line to replace in it (a set key wins over a
        # commented one); every key and table header, to refuse what TOML refuses because it is written twice.
        if (in_string != "") { if (count($0, in_string) % 2) in_string = ""; next }
        if ($0 ~ header_re) {
            table = name_of($0); array = $0 ~ /^[[:space:]]*\[\[/; section++
            if (!array) { if (table in header_lines) header_lines[table] = header_lines[table] " " FNR
                          else { header_lines[table] = FNR; headers[++nheaders] = table } }
            in_hv = !array && table ~ /^hypervisor\.[A-Za-z0-9_-]+$/
            if (in_hv) { tables++; header = FNR }
        } else if ($0 ~ key_re) {
            name = name_of($0); id = (array ? section : 0) SUBSEP table SUBSEP name
            if (id in key_lines) key_lines[id] = key_lines[id] " " FNR; else { key_lines[id] = FNR; keys[++nkeys] = id }
            if (in_hv && !set_at && name == key) set_at = FNR
            if (!in_hv && name == key) elsewhere = elsewhere "warning: " file ":" FNR " sets " key " in " \
                (table == "" ? "the top level" : "[" table "]") ", where kata ignores it: delete that line\n"
            if (count($0, "\"\"\"") % 2) in_string = "\"\"\""; else if (count($0, "\047\047\047") % 2) in_string = "\047\047\047"
        } else if (in_hv && !commented_at && $0 ~ commented_re) commented_at = FNR
        next
    }
    FNR == 1 { at = set_at ? set_at : commented_at }
    at && FNR == at { emit(replaced($0)); next }
    { emit($0) }
    !at && FNR == header { emit(setting ($0 ~ /\r$/ ? "\r" : "")) }
    END {
        for (i = 1; i <= nkeys; i++) if (key_lines[keys[i]] ~ / /) {
            split(keys[i], part, SUBSEP)
            printf "%s is set %s in %s: %s\n", part[3], times(key_lines[keys[i]]), \
                (part[2] == "" ? "the top level (before any [table] header)" : "[" part[2] "]"), \
                places(key_lines[keys[i]]) > "/dev/stderr"
            twice++
        }
        for (i = 1; i <= nheaders; i++) if (header_lines[headers[i]] ~ / /) {
            printf "[%s] is written %s: %s\n", headers[i], times(header_lines[headers[i]]), \
                places(header_lines[headers[i]]) > "/dev/stderr"
            twice++
        }
        if (twice) {
            print "TOML allows a key once per table and a table header once, and kata refuses this file:" \
                " keep the line you mean, delete the other (move the keys of a repeated table under its first" \
                " header), then run this again" > "/dev/stderr"
            exit 4
        }
        if (tables != 1) { printf "expected one [hypervisor.<name>] table, found %d\n", tables > "/dev/stderr"; exit 3 }
        if (held) printf "%s%s", out, (ENVIRON["NOEOL"] == "1" ? "" : "\n")
        printf "%s", elsewhere > "/dev/stderr"
    }
' "$CONFIG" "$CONFIG" > "$tmp" || status=$?
if [ "$status" -ne 0 ]; then
    echo "$CONFIG was not changed" >&2
    exit "$status"
fi
if command -v python3 > /dev/null 2>&1 && python3 -c 'import tomllib' 2> /dev/null; then
    # a second opinion where a TOML parser is at hand (Python 3.11+): never install a file kata would refuse
    if ! err=$(python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$tmp" 2>&1); then
        echo "the edited file would not be valid TOML (python3 tomllib: ${err##*$'\n'}): repair $CONFIG first" \
            "(kata refuses it as it is too, if the problem is not on the $KEY line); $CONFIG was not changed" >&2
        exit 5
    fi
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
