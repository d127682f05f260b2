"""Recording through real redirects, and the stats endpoints: totals, series, tops, windows, rights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models import Click
from tests.factories import auth, make_key, make_link, make_user

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
T0 = datetime(2030, 3, 10, 9, 15, tzinfo=UTC)


def visit(client, code, user_agent=FIREFOX, referrer=None, ip="192.0.2.1", method="get"):
    headers = {"User-Agent": user_agent, **({"Referer": referrer} if referrer else {})}
    return getattr(client, method)(f"/{code}", headers=headers, environ_base={"REMOTE_ADDR": ip})


def flush(app):
    return app.extensions["clicks"].flush()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_every_redirect_status_records_a_click(client, app, status):
    code = client.post("/shorten", json={"url": "https://example.com", "redirect_type": status}).get_json()[
        "short_code"
    ]
    assert visit(client, code).status_code == status
    assert flush(app) == 1
    assert client.get(f"/urls/{code}").get_json()["click_count"] == 1


def test_head_404_and_410_record_nothing(client, app):
    live, dead = make_link(), make_link(is_active=False)
    assert visit(client, live.code, method="head").status_code == 302
    assert visit(client, "nosuchcode").status_code == 404
    assert visit(client, dead.code).status_code == 410
    assert flush(app) == 0
    assert Click.select().count() == 0


def test_link_stats_report_totals_visitors_series_and_tops(client, app):
    link = make_link()
    visit(client, link.code, FIREFOX, "https://news.example.com/story", ip="192.0.2.1")
    visit(client, link.code, FIREFOX, "https://news.example.com/other", ip="192.0.2.1")
    visit(client, link.code, IPHONE, "https://social.example/p/1", ip="192.0.2.2")
    visit(client, link.code, IPHONE, ip="192.0.2.3")
    visit(client, link.code, BOT, ip="66.249.66.1")
    assert flush(app) == 5
    body = client.get(f"/urls/{link.code}/stats").get_json()
    assert body["totals"] == {
        "clicks": 5,
        "human_clicks": 4,
        "bot_clicks": 1,
        "unique_visitors": 4,
        "bot_share": 0.2,
    }
    assert body["referrers"][0] == {"name": "news.example.com", "clicks": 2}  # most clicked first
    assert {r["name"]: r["clicks"] for r in body["referrers"]} == {
        "news.example.com": 2,
        "social.example": 1,
        "(direct)": 1,
    }
    assert {b["name"]: b["clicks"] for b in body["browsers"]} == {"Firefox": 2, "Mobile Safari": 2}
    assert {o["name"]: o["clicks"] for o in body["operating_systems"]} == {"Linux": 2, "iOS": 2}
    assert {d["name"]: d["clicks"] for d in body["devices"]} == {"desktop": 2, "mobile": 2}
    assert body["bucket"] == "day" and len(body["series"]) in (30, 31)
    assert sum(point["clicks"] for point in body["series"]) == 5
    assert sum(point["human_clicks"] for point in body["series"]) == 4


def record_at(app, link, moments, user_agent=FIREFOX):
    clicks = app.extensions["clicks"]
    for i, moment in enumerate(moments):
        clicks.record(link.id, user_agent=user_agent, client_ip=f"198.51.100.{i}", now=moment)
    clicks.flush()


@pytest.mark.parametrize(
    ("bucket", "to", "expected"),
    [
        ("hour", T0 + timedelta(hours=3), [2, 0, 1, 0]),  # to 12:15 is aligned up to 13:00
        ("day", T0 + timedelta(days=2), [3, 1, 0]),
        ("month", T0 + timedelta(days=40), [4, 1]),
    ],
)
def test_series_buckets_clicks_by_hour_day_and_month(client, app, bucket, to, expected):
    link = make_link()
    record_at(
        app,
        link,
        [
            T0,
            T0 + timedelta(minutes=30),
            T0 + timedelta(hours=2),
            T0 + timedelta(days=1),
            T0 + timedelta(days=35),
        ],
    )
    query = {
        "from": T0.isoformat().replace("+00:00", "Z"),
        "to": to.isoformat().replace("+00:00", "Z"),
        "bucket": bucket,
    }
    body = client.get(f"/urls/{link.code}/stats", query_string=query).get_json()
    assert [point["clicks"] for point in body["series"]] == expected
    assert (
        body["series"][0]["start"]
        == {
            "hour": "2030-03-10T09:00:00+00:00",
            "day": "2030-03-10T00:00:00+00:00",
            "month": "2030-03-01T00:00:00+00:00",
        }[bucket]
    )


def test_window_excludes_clicks_outside_it(client, app):
    link = make_link()
    record_at(app, link, [T0 - timedelta(hours=2), T0, T0 + timedelta(hours=5)])
    query = {"from": "2030-03-10T09:00:00Z", "to": "2030-03-10T10:00:00Z"}
    body = client.get(f"/urls/{link.code}/stats", query_string=query).get_json()
    assert body["totals"]["clicks"] == 1 and body["from"] == "2030-03-10T09:00:00+00:00"
    assert body["to"] == "2030-03-10T10:00:00+00:00"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2030-03-10T10:00:00Z", "to": "2030-03-10T09:00:00Z"}, "from"),
        ({"bucket": "week"}, "bucket"),
        ({"from": "2030-03-10T10:00:00"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z", "bucket": "hour"}, "bucket"),
    ],
)
def test_bad_stats_window_is_400_naming_the_field(client, query, field):
    link = make_link()
    response = client.get(f"/urls/{link.code}/stats", query_string=query)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]


def test_stats_of_an_owned_link_are_for_owner_and_admins_only(client):
    alice, bob, admin = make_user("alice"), make_user("bob"), make_user("root", role="admin")
    link = make_link(owner=alice)
    path = f"/urls/{link.code}/stats"
    assert client.get(path).status_code == 404
    assert client.get(path, headers=auth(make_key(bob))).status_code == 404
    assert client.get(path, headers=auth(make_key(alice))).status_code == 200
    assert client.get(path, headers=auth(make_key(admin))).status_code == 200
    assert client.get(f"/urls/{make_link().code}/stats").status_code == 200  # anonymous link: public


def test_site_stats_show_totals_and_top_links_to_admins_only(client, app):
    admin = auth(make_key(make_user("root", role="admin")))
    busy, quiet = make_link(code="busy1"), make_link(code="quiet1")
    record_at(app, busy, [T0] * 3)
    record_at(app, quiet, [T0])
    record_at(app, quiet, [T0], user_agent=BOT)
    query = {"from": "2030-03-10T00:00:00Z", "to": "2030-03-11T00:00:00Z"}
    body = client.get("/stats", query_string=query, headers=admin).get_json()
    assert body["totals"]["clicks"] == 5 and body["totals"]["human_clicks"] == 4
    assert body["top_links"] == [
        {"short_code": "busy1", "human_clicks": 3},
        {"short_code": "quiet1", "human_clicks": 1},
    ]
    assert client.get("/stats").status_code == 401
    assert client.get("/stats", headers=auth(make_key(make_user("bob")))).status_code == 403
