"""Noise of the bundled Semgrep rules on merged code: findings per rule over released sdists.

Run by hand (not by pytest). It scans every ``.py`` file of the given source trees, naming
each file explicitly (a directory would make Semgrep skip ``tests/``), and prints findings per
rule, split into test and non-test code, with findings per 1,000 lines::

    pip download --no-deps --no-binary :all: nova cinder os-brick -d /tmp/corpus
    (cd /tmp/corpus && for f in *.tar.gz; do tar xzf "$f"; done)
    .venv/bin/python bench/corpus.py /tmp/corpus/nova-* /tmp/corpus/cinder-* /tmp/corpus/os_brick-*
    .venv/bin/python bench/corpus.py --rules /tmp/rules-before /tmp/corpus/...   # another rule set

``--list RULE`` prints every finding of that rule (path:line and the source line), for triage.
It also reports the files Semgrep could not parse fully (the blind spots item 7 is about).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def is_test(path: str) -> bool:
    parts = Path(path).parts
    return "tests" in parts or "functional" in parts or Path(path).name.startswith("test_")


def line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trees", nargs="+", type=Path)
    ap.add_argument("--rules", type=Path, default=ROOT / "rules" / "semgrep")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--list", action="append", default=[], metavar="RULE")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    files = sorted(str(p) for tree in args.trees for p in tree.rglob("*.py") if p.is_file())
    lines = {f: line_count(Path(f).read_bytes()) for f in files}
    configs = [
        c for p in sorted(args.rules.glob("*.yaml")) if not p.name.endswith(".test.yaml")
        for c in ("--config", str(p))
    ]  # fmt: skip
    semgrep = str(Path(sys.executable).parent / "semgrep")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as targets:
        targets.write("\n".join(files))
    argv = [
        semgrep, "scan", "--json", "--metrics=off", "--disable-version-check", "--no-git-ignore",
        "--quiet", "--experimental", f"--jobs={args.jobs}", "--max-target-bytes=5000000",
        "--timeout=60", *configs, "--target-list", targets.name,
    ]  # fmt: skip
    proc = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, "SEMGREP_ENABLE_VERSION_CHECK": "0"}
    )
    os.unlink(targets.name)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        # older semgrep: no --target-list; fall back to naming the files on the command line
        argv = [*argv[: argv.index("--target-list")], "--", *files]
        proc = subprocess.run(argv, capture_output=True, text=True)
        report = json.loads(proc.stdout)
    if args.json_out:
        args.json_out.write_text(json.dumps(report))

    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    listed = []
    for r in report.get("results", []):
        rule = r["check_id"].rsplit(".", 1)[-1]
        counts[rule][1 if is_test(r["path"]) else 0] += 1
        if rule in args.list:
            listed.append(f"{rule} {r['path']}:{r['start']['line']}: {r['extra'].get('lines', '').strip()}")
    code_lines = sum(n for f, n in lines.items() if not is_test(f))
    test_lines = sum(n for f, n in lines.items() if is_test(f))
    print(
        f"{len(files)} files, {code_lines + test_lines:,} lines ({code_lines:,} non-test, {test_lines:,} test)"
    )
    print("| rule | non-test | tests | total |\n|---|---|---|---|")
    for rule, (c, t) in sorted(counts.items(), key=lambda kv: -sum(kv[1])):
        print(f"| `{rule}` | {c} | {t} | {c + t} |")
    total_c = sum(c for c, _ in counts.values())
    total_t = sum(t for _, t in counts.values())
    print(f"| **all** | {total_c} | {total_t} | {total_c + total_t} |")
    print(
        f"per 1,000 lines: {1000 * total_c / max(code_lines, 1):.3f} non-test, "
        f"{1000 * (total_c + total_t) / max(code_lines + test_lines, 1):.3f} overall"
    )
    errors = report.get("errors", [])
    print(f"semgrep errors: {len(errors)}")
    for e in errors[:20]:
        print(f"  {e.get('type')}: {e.get('path') or ''} {str(e.get('message', ''))[:120]}")
    for line in listed:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
