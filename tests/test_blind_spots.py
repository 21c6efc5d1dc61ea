"""Blind spots are findings about the review: a file an analyzer could not parse, or read only in
part, is named in the summary's incomplete section, and Semgrep still reviews a Python 2 file that
Bandit cannot parse at all."""

from __future__ import annotations

from bot.model import Change, ChangedFile, FileStatus, Hunk

PYTHON2 = (
    "from oslo_log import log as logging\n"
    "\n"
    "LOG = logging.getLogger(__name__)\n"
    "\n"
    "\n"
    "def connect_volume(connection_info):\n"
    "    try:\n"
    "        attach(connection_info)\n"
    "    except Exception, e:\n"
    '        print "attach failed"\n'
    '        LOG.error("Attach failed for %s: %s", connection_info, e)\n'
)


def added(path: str, text: str) -> ChangedFile:
    content = text.encode()
    n = len(text.splitlines())
    return ChangedFile(
        path, FileStatus.ADDED, content, added_lines=frozenset(range(1, n + 1)), hunks=(Hunk(1, n),)
    )


async def test_a_python2_file_is_reviewed_by_semgrep_and_named_as_incomplete(engine, settings):
    review = await engine.review(Change([added("nova/volume/old.py", PYTHON2)]), settings.review)
    # Semgrep's tolerant parser still finds the logged connection_info on line 11 ...
    found = {(c.finding.tool, c.finding.rule_id, c.line) for c in review.comments}
    assert ("semgrep", "credential-structure-in-log", 11) in found
    # ... and the summary says which analyzer could not read the file, and why.
    errors = "\n".join(review.errors)
    assert "bandit could not analyze nova/volume/old.py" in errors
    assert "semgrep: nova/volume/old.py is not valid Python 3 (line 9" in errors
    assert "**This review is incomplete**" in review.summary
    assert "nova/volume/old.py is not valid Python 3" in review.summary


async def test_a_valid_python3_file_adds_no_blind_spot(engine, settings):
    code = PYTHON2.replace("except Exception, e:", "except Exception as e:").replace(
        'print "attach failed"', 'print("attach failed")'
    )
    review = await engine.review(Change([added("nova/volume/new.py", code)]), settings.review)
    assert review.errors == []
    assert "credential-structure-in-log" in {c.finding.rule_id for c in review.comments}
