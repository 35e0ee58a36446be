"""`ft channels list|set` as an admin runs it, on SQLite and PostgreSQL: the same rules as `/ft channel mode`."""

import json

from typer.testing import CliRunner

from core.states import DraftStatus
from ftbot.cli.main import app
from storage import open_store
from storage.models import ChannelChange, Draft

runner = CliRunner()


def ft(*args):
    return runner.invoke(app, list(args))


def test_set_and_list_modes_with_the_ladder(ft_env):
    assert "No channel has a mode set" in ft("channels", "list").output
    bad = ft("channels", "set", "CSUP", "loud")
    assert bad.exit_code == 2 and "unknown mode" in bad.output
    assert ft("channels", "set", "#support", "draft").exit_code == 2
    needs = ft("channels", "set", "CSUP", "draft")
    assert needs.exit_code == 2 and "need a drafts channel" in needs.output
    assert ft("channels", "set", "CSUP", "draft", "--drafts", "CDRAFTS").exit_code == 0

    # Auto is earned by the record: 3 of 4 judged drafts sent unchanged, where the default asks for 80 % of 20.
    store = open_store(ft_env)
    with store.session() as s:
        for i, status in enumerate((DraftStatus.SENT, DraftStatus.SENT, DraftStatus.SENT, DraftStatus.EDITED,
                                    DraftStatus.EXPIRED)):
            s.add(Draft(mode="draft", channel_id="CSUP", question_ts=f"{i}.0", question=f"q{i}", status=status))
    refused = ft("channels", "set", "CSUP", "auto")
    assert refused.exit_code == 1 and "3 of the last 4 drafts judged" in refused.output
    done = ft("channels", "set", "CSUP", "auto", "--confirm", "--json")
    assert done.exit_code == 0
    assert json.loads(done.stdout)["note"] == "3 of the last 4 drafts sent unchanged; confirmed below the bar"
    [row] = json.loads(ft("channels", "list", "--json").stdout)
    assert (row["id"], row["mode"], row["drafts_channel"], row["record"]) == (
        "CSUP", "auto", "CDRAFTS", {"sent_unchanged": 3, "judged": 4})
    assert row["mode_set_by"].startswith("cli")
    with store.session() as s:
        notes = [c.note for c in s.exec(ChannelChange.__table__.select())]
    assert "3 of the last 4 drafts sent unchanged; confirmed below the bar" in notes
    store.close()
