"""The Gerrit REST client against the strict fake: content decoding by X-FYI-Content-Encoding."""

from __future__ import annotations

import pytest

from bot.config import GerritSettings
from bot.platforms.base import PermanentError
from bot.platforms.gerrit import GerritRest
from tests.fakes.gerrit import FakeGerrit

TEXT = "# -*- coding: utf-8 -*-\nname = 'Jérôme'  # non-ASCII survives both encodings\n".encode()


@pytest.mark.parametrize("accept", [GerritRest.content_accept, "application/json"])
async def test_content_is_decoded_whichever_encoding_gerrit_chose(accept: str) -> None:
    """rest-api-changes.txt "Get Content": base64, or a JSON string when the only Accept value is
    application/json (X-FYI-Content-Encoding says which). Either way the bytes are the file's."""
    async with FakeGerrit(user="bot", http_password="pw") as g:
        owner = g.add_account("Jane", "jane", "jane@example.com")
        change = g.create_change(
            "p/q", "master", owner, "s", base_files={"a.py": b"x = 1\n"}, files={"a.py": TEXT}
        )
        g.set_branch_file("p/q", "master", ".patchwarden.yaml", b"enabled: true\n")
        rest = GerritRest(GerritSettings(url=g.url, user="bot", http_password="pw"))
        rest.content_accept = accept
        try:
            base = f"/changes/p%2Fq~{change.number}/revisions/{change.current.revision}/files"
            assert (await rest.get_content(f"{base}/a.py/content")).data == TEXT
            assert (await rest.get_content(f"{base}/a.py/content", params={"parent": "1"})).data == b"x = 1\n"
            assert await rest.get_content(f"{base}/missing.py/content") is None
            branch = "/projects/p%2Fq/branches/master/files/.patchwarden.yaml/content"
            assert (await rest.get_content(branch)).data == b"enabled: true\n"
        finally:
            await rest.close()
        assert sum("/content" in u for u in g.request_urls) == 4  # every read went to the fake


async def test_content_that_is_neither_base64_nor_json_is_a_clear_error() -> None:
    async with FakeGerrit(user="bot", http_password="pw") as g:
        owner = g.add_account("Jane", "jane", "jane@example.com")
        change = g.create_change("p", "master", owner, "s", base_files={}, files={"a.py": b"x\n"})
        g.fail_next("GET", r"/content$", status=200, body="<html>login page</html>")
        rest = GerritRest(GerritSettings(url=g.url, user="bot", http_password="pw"))
        try:
            with pytest.raises(PermanentError, match="not base64"):
                await rest.get_content(f"/changes/p~{change.number}/revisions/1/files/a.py/content")
        finally:
            await rest.close()
