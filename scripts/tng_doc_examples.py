"""Extract every ```json example of TNG's English docs at a release tag into tests/fixtures/tng/<version>/.

Usage: .venv/bin/python scripts/tng_doc_examples.py [MIRROR_GIT_DIR] (default: /work/.mirror/inclavare-containers+TNG/repo)

Each block becomes NN.json; index.json notes its source (file:line of the block's first line) and what it is:
- "document": the block is a whole configuration (its keys are TNG top-level keys);
- "fragment": the block is one field of an entry or of the document (e.g. ``"attest": {…}``), shown in the docs as
  a piece of a configuration. It is stored inside the smallest configuration the docs' own examples use: top-level
  keys as they are; ``attest``/``ohttp`` on an egress and ``verify`` on an ingress, both with a mapping rule, unless
  the nearest heading above names the other side. The wrapping is written in the index;
- blocks that are not configurations (reference values, policies) are counted in the index as "skipped".
The *_zh.md translations repeat the same examples and are left out.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

TAGS = {"1.0.3": "v1.0.3", "1.0.6": "v1.0.6", "2.8.0": "v2.8.0"}
TOP = {"add_ingress", "add_egress", "admin_bind", "control_interface", "metric", "trace"}
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tng"
MAPPING_IN = {"in": {"port": 10001}, "out": {"host": "127.0.0.1", "port": 20001}}
MAPPING_EG = {"in": {"port": 20001}, "out": {"host": "127.0.0.1", "port": 30001}}


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout


def blocks(text: str) -> list[tuple[int, str, str]]:
    """(line of the block's first content line, nearest heading above, body) for each ```json block."""
    out: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    heading = ""
    i = 0
    while i < len(lines):
        if re.match(r"^#+\s", lines[i]):
            heading = lines[i]
        m = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            if m.group(1).lower().startswith("json"):
                out.append((i + 2, heading, "\n".join(lines[i + 1 : j])))
            i = j + 1
            continue
        i += 1
    return out


def classify(body: str, heading: str) -> tuple[str, object, str]:
    """(kind, configuration, how it was wrapped)."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError:
        try:
            doc = json.loads("{" + body + "}")
        except json.JSONDecodeError:
            return "skipped", None, "not JSON"
    if not isinstance(doc, dict) or not doc:
        return "skipped", None, "not an object"
    keys = set(doc)
    if keys <= TOP:
        return ("document", doc, "") if body.lstrip().startswith("{") else ("fragment", doc, "top-level keys as is")
    if keys <= {"attest", "verify", "ohttp", "no_ra"}:
        side = "add_egress" if "attest" in keys or "ohttp" in keys else "add_ingress"
        h = heading.lower()
        if "ingress" in h and "egress" not in h:
            side = "add_ingress"
        elif "egress" in h and "ingress" not in h:
            side = "add_egress"
        how = f"placed in {side}[0] beside a mapping"
        if not keys & {"attest", "verify", "no_ra"}:
            doc = {**doc, "no_ra": True}
            how += ' and "no_ra": true'
        mapping = MAPPING_IN if side == "add_ingress" else MAPPING_EG
        return "fragment", {side: [{"mapping": mapping, **doc}]}, how
    return "skipped", None, f"not a TNG configuration (keys: {', '.join(sorted(keys))})"


def main() -> None:
    repo = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/inclavare-containers+TNG/repo"
    for version, tag in TAGS.items():
        d = OUT / version
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("*.json"):
            old.unlink()
        docs = sorted(
            f
            for f in git(repo, "ls-tree", "-r", "--name-only", tag, "docs").split()
            if f.endswith(".md") and not f.endswith("_zh.md")
        )
        index: list[dict[str, object]] = []
        skipped: list[dict[str, object]] = []
        n = 0
        for f in docs:
            for line, heading, body in blocks(git(repo, "show", f"{tag}:{f}")):
                kind, config, how = classify(body, heading)
                if kind == "skipped":
                    skipped.append({"source": f"{f}:{line}", "why": how})
                    continue
                n += 1
                name = f"{n:02d}.json"
                (d / name).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", "utf-8")
                index.append({"file": name, "source": f"{f}:{line}", "kind": kind, "wrapped": how})
        meta = {
            "tag": tag,
            "commit": git(repo, "rev-list", "-n1", tag).strip(),
            "docs": docs,
            "json_blocks": len(index) + len(skipped),
            "examples": index,
            "skipped": skipped,
        }
        (d / "index.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(
            f"{version} ({tag}): {len(index) + len(skipped)} json blocks, {len(index)} examples, {len(skipped)} skipped"
        )


if __name__ == "__main__":
    main()
