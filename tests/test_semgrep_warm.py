"""Warm Semgrep (bot.analyzers.semgrep_lsp): a long-lived ``semgrep lsp`` finds exactly what a
cold ``semgrep scan`` finds, including where the server has known traps (``# nosemgrep``,
``tests/``, reused paths, parse errors), and a server that dies, hangs or grows is replaced
while the review still gets the CLI's answer. Real Semgrep throughout."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from bot import metrics
from bot.analyzers import SemgrepAnalyzer
from bot.analyzers.semgrep_lsp import SemgrepServer
from bot.resources import data_path

RULES = Path(data_path("rules", "semgrep"))
REPO = Path(__file__).resolve().parent.parent
LARGE = REPO / "tests" / "fixtures" / "large" / "nova-34.0.0-nova-tests-unit-compute-test_api.py.txt"

TRAPS = {
    # Semgrep's own reading of the comment decides: the server ignores it.
    "nova/nosem.py": "import subprocess\nsubprocess.call(cmd, shell=True)  # nosemgrep\n"
    "# nosemgrep\nsubprocess.call(cmd, shell=True)\nsubprocess.call(cmd, shell=True)\n",
    # Semgrep's default ignore list skips tests/ when it walks a directory.
    "nova/tests/unit/test_x.py": "import subprocess\nsubprocess.call(cmd, shell=True)\n",
    # A fix on a line with non-ASCII text before the match: the server's positions count bytes
    # where the protocol counts UTF-16 units, so this file's fix is placed by the CLI.
    "nova/accents.py": 'import requests\nx = "é€😀"; r = requests.get(url, verify=False)\n',
    # Parse errors: the CLI reports them, the server only logs them.
    "playbooks/broken.yaml": "- hosts: all\n  tasks: [\n    - uri:\n        validate_certs: no\n",
    "nova/py2.py": 'import os\nprint "x"\nos.system(cmd)\n',
    "tools/run.sh": "#!/bin/sh\ncurl -k https://example.com/install.sh | sh\n",
}


def key(result) -> tuple[list, list]:
    return (
        sorted(
            (f.rule_id, f.path, f.line, f.end_line, f.message, f.severity, f.confidence, repr(f.fix))
            for f in result.findings
        ),
        sorted(result.errors),
    )


def write(root: Path, files: dict[str, str | bytes]) -> list[str]:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return sorted(files)


@pytest.fixture
async def warm():
    # Every file through the server, however many (the service sends changes of at most 16).
    analyzer = SemgrepAnalyzer(
        RULES, max_target_bytes=10_000_000, server=SemgrepServer(), warm_max_files=10_000
    )
    yield analyzer
    await analyzer.close()


@pytest.fixture
def cold():
    return SemgrepAnalyzer(RULES, max_target_bytes=10_000_000)


def warm_count() -> float:
    return metrics.REGISTRY.get_sample_value("patchwarden_semgrep_files_total", {"path": "warm"}) or 0.0


async def test_same_findings_as_the_cli_on_the_rule_tests_and_the_traps(tmp_path, warm, cold):
    """Every ``# ruleid:`` target of the bundled rules, and the files the server is known to get
    wrong, reviewed twice warm (the second time on a server that has seen them)."""
    files: dict[str, str | bytes] = {
        f"targets/{p.name}": p.read_bytes()
        for p in RULES.iterdir()
        if p.suffix in (".py", ".sh") or p.name.endswith(".test.yaml")
    }
    files.update(TRAPS)
    paths = write(tmp_path, files)
    reference = await cold.run(tmp_path, paths, 120)
    expected = key(reference)
    assert len(expected[0]) > 150 and expected[1], "the rule tests have findings and the traps errors"
    before = warm_count()
    for _ in range(2):
        assert key(await warm.run(tmp_path, paths, 120)) == expected
    # The server answered for every file but those it is not trusted with: `nosem` in the text,
    # a Semgrep error (the CLI's report of it is the one kept), a fix it cannot place for certain.
    raw = {p: c if isinstance(c, bytes) else c.encode() for p, c in files.items()}
    for_the_cli = {p for p in paths if b"nosem" in raw[p].lower()}
    for_the_cli |= {
        p for p in paths if any(p in line for line in reference.errors if "not valid Python 3" not in line)
    }
    for_the_cli.add("nova/accents.py")
    assert {"nova/nosem.py", "playbooks/broken.yaml"} <= for_the_cli
    fixed = {f.path for f in reference.findings if f.fix is not None} - for_the_cli
    assert {"targets/transport.py", "targets/python-unsafe-apis.py"} <= fixed, "fixes placed warm"
    assert warm_count() - before == 2 * (len(paths) - len(for_the_cli))
    assert warm.server.started == 1


async def test_same_findings_as_the_cli_on_real_code(tmp_path, warm, cold):
    """Real code, most of it clean: the bot's own sources, the bench inputs and Nova's 430 KB
    test_api.py (the server answers for it whole; focusing is the pipeline's business)."""
    files: dict[str, str | bytes] = {
        p.relative_to(REPO).as_posix(): p.read_bytes()
        for p in [*REPO.glob("bot/**/*.py"), *REPO.glob("bench/**/*.py"), *REPO.glob("tests/fakes/*.py")]
    }
    files["nova/tests/unit/compute/test_api.py"] = LARGE.read_bytes()
    paths = write(tmp_path, files)
    expected = key(await cold.run(tmp_path, paths, 300))
    assert expected[0], "something to compare"
    assert key(await warm.run(tmp_path, paths, 300)) == expected


async def test_large_changes_go_to_the_cli(tmp_path):
    paths = write(tmp_path, {f"nova/m{i}.py": f"import os\nos.system(cmd{i})\n" for i in range(3)})
    warm = SemgrepAnalyzer(RULES, server=SemgrepServer(), warm_max_files=2)
    try:
        before = warm_count()
        assert len((await warm.run(tmp_path, paths, 60)).findings) == 3
        assert warm_count() == before and warm.server.started == 0
        assert len((await warm.run(tmp_path, paths[:2], 60)).findings) == 2
        assert warm_count() == before + 2
    finally:
        await warm.close()


async def test_a_path_reused_with_new_content_gets_fresh_results(tmp_path, warm):
    write(tmp_path, {"nova/a.py": "import os\nos.system(cmd)\n"})
    first = await warm.run(tmp_path, ["nova/a.py"], 60)
    write(tmp_path, {"nova/a.py": "import os\n\n\nos.system(cmd)\nos.system(other)\n"})
    second = await warm.run(tmp_path, ["nova/a.py"], 60)
    assert [f.line for f in first.findings] == [2]
    assert sorted(f.line for f in second.findings) == [4, 5]


async def test_a_killed_server_is_replaced_and_the_review_still_complete(tmp_path, warm, cold):
    paths = write(
        tmp_path, {"nova/a.py": "import os\nos.system(cmd)\n", "tools/b.sh": "curl -k https://x | sh\n"}
    )
    expected = key(await cold.run(tmp_path, paths, 60))
    assert key(await warm.run(tmp_path, paths, 60)) == expected
    os.killpg(warm.server._server.pid, signal.SIGKILL)
    assert key(await warm.run(tmp_path, paths, 60)) == expected
    assert key(await warm.run(tmp_path, paths, 60)) == expected
    assert warm.server.started == 2


async def test_a_hung_server_is_killed_and_the_file_goes_to_the_cli(tmp_path, cold):
    warm = SemgrepAnalyzer(RULES, server=SemgrepServer(request_timeout=2.0))
    try:
        paths = write(tmp_path, {"nova/a.py": "import os\nos.system(cmd)\n"})
        expected = key(await cold.run(tmp_path, paths, 60))
        assert key(await warm.run(tmp_path, paths, 60)) == expected
        hung = warm.server._server
        os.kill(hung.pid, signal.SIGSTOP)
        assert key(await warm.run(tmp_path, paths, 60)) == expected  # after 2 s, from the CLI
        assert not hung.alive and warm.server._server is None
        assert key(await warm.run(tmp_path, paths, 60)) == expected
        assert warm.server.started == 2
    finally:
        await warm.close()


async def test_servers_are_retired_at_their_memory_ceiling_and_file_count(tmp_path, cold):
    paths = write(tmp_path, {f"nova/m{i}.py": f"import os\nos.system(cmd{i})\n" for i in range(3)})
    expected = [key(await cold.run(tmp_path, [p], 60)) for p in paths]
    for server in (SemgrepServer(memory_limit=1), SemgrepServer(max_files=1)):
        warm = SemgrepAnalyzer(RULES, server=server)
        try:
            assert [key(await warm.run(tmp_path, [p], 60)) for p in paths] == expected
            assert server.started == 3 and server._server is None  # one review each, then retired
        finally:
            await warm.close()


async def test_changed_rules_restart_the_server(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    code = tmp_path / "code"
    paths = write(code, {"nova/a.py": "import os\nos.system(cmd)\n"})
    warm = SemgrepAnalyzer(rules, server=SemgrepServer())
    try:
        assert [f.rule_id for f in (await warm.run(code, paths, 60)).findings] == ["os-system-injection"]
        for rule_file in rules.glob("*.yaml"):
            text = rule_file.read_text()
            if "id: os-system-injection" in text:
                rule_file.write_text(text.replace("id: os-system-injection", "id: os-system-renamed"))
        assert [f.rule_id for f in (await warm.run(code, paths, 60)).findings] == ["os-system-renamed"]
        assert warm.server.started == 2
    finally:
        await warm.close()
