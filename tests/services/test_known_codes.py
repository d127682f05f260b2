"""The known-codes Bloom filter: never a false "not there", rarely a false "maybe", trusted once loaded."""

from __future__ import annotations

import itertools
import os

import pytest

from app.services.codes import generate_code
from app.services.known_codes import KnownCodes, RecentCodes


def distinct_codes(count: int, *, excluding: frozenset[str] = frozenset()) -> list[str]:
    codes: set[str] = set()
    while len(codes) < count:
        code = generate_code(7)
        if code not in excluding:
            codes.add(code)
    return sorted(codes)


def loaded_with(codes: list[str], *, chunk: int = 1000, **sizing) -> KnownCodes:
    known = KnownCodes(**sizing)
    known.begin_load(len(codes))
    for start in range(0, len(codes), chunk):
        known.load(iter(codes[start : start + chunk]))  # any iterable, as the listener's split lines
    known.finish_load()
    return known


def test_an_unloaded_filter_says_every_code_may_exist():
    known = KnownCodes()
    assert not known.loaded
    assert all(known.may_exist(code) for code in ("abc1234", "nosuch", "x"))
    known.add("abc1234")  # nothing to add to: still not trusted
    assert not known.loaded and known.count == 0 and known.size_bytes == 0


def test_a_loaded_filter_holds_every_loaded_code_and_rejects_most_others():
    codes = distinct_codes(10_000)
    # Sized tightly (no headroom, no minimum), so the configured rate is what the test measures.
    known = loaded_with(codes, min_capacity=1, headroom=1.0)
    assert known.loaded and known.count == len(codes)
    assert all(known.may_exist(code) for code in codes)  # never a false "not there"
    absent = distinct_codes(10_000, excluding=frozenset(codes))
    false_positives = sum(known.may_exist(code) for code in absent)
    assert false_positives < 0.035 * len(absent)  # 2% configured


def test_the_filter_is_not_trusted_while_it_is_being_built():
    known = KnownCodes()
    known.begin_load(3)
    known.load(["abc1234", "def5678"])
    assert not known.loaded and known.may_exist("nosuch1")  # half a table must not answer "not there"
    known.finish_load()
    assert known.loaded and not known.may_exist("nosuch1")


def test_codes_added_while_building_are_in_the_built_filter():
    known = KnownCodes()
    known.begin_load(2)
    known.load(["abc1234"])
    known.add("created1")  # a notification applied between two chunks
    known.load(["def5678"])
    known.finish_load()
    assert all(known.may_exist(code) for code in ("abc1234", "created1", "def5678"))
    assert known.count == 3


def test_codes_added_during_a_reload_are_in_the_old_and_the_new_filter():
    known = loaded_with(["abc1234"])
    known.begin_load(1)  # the listener rebuilds it
    assert known.loaded  # the old one keeps answering meanwhile
    known.add("created1")
    assert known.may_exist("created1")  # at once, from the old one
    known.load(["def5678"])
    known.finish_load()
    assert known.may_exist("created1") and known.may_exist("def5678")
    assert not known.may_exist("abc1234")  # the new filter holds what the table held, nothing older


def test_added_codes_are_found_at_once_and_counted():
    known = loaded_with(["abc1234"])
    assert not known.may_exist("created1")
    known.add("created1")
    assert known.may_exist("created1") and known.count == 2


def test_reset_stops_trusting_the_filter_until_the_next_load():
    known = loaded_with(["abc1234"])
    known.begin_load(1)  # a reload in progress is dropped too
    known.reset()
    assert not known.loaded and known.count == 0 and known.size_bytes == 0
    assert known.may_exist("nosuch1")
    with pytest.raises(RuntimeError):
        known.finish_load()
    known.begin_load(1)
    known.load(["abc1234"])
    known.finish_load()
    assert known.loaded and not known.may_exist("nosuch1") and known.may_exist("abc1234")


def test_needs_reload_once_more_codes_were_added_than_it_was_sized_for():
    codes = distinct_codes(10)
    known = loaded_with(codes, min_capacity=10, headroom=1.0)  # capacity 10, all used
    assert not known.needs_reload
    # A code the filter does not already (falsely, ~1% of codes) hold: string hashes vary by process.
    created = next(code for code in (f"created{n}" for n in range(1000)) if not known.may_exist(code))
    known.add(created)
    assert known.needs_reload
    known.begin_load(20)  # a reload is under way: not asked for again
    assert not known.needs_reload
    known.load([*codes, created])
    known.finish_load()
    assert not known.needs_reload and known.count == 11


def test_a_code_added_again_is_counted_once_and_does_not_bring_a_reload_closer():
    # Capacity 2, and a rate that makes "created1" a false positive (then never counted) all but
    # impossible: at the default 2% it is in ~1 run in 500 (0.02% at 1%; hashes are seeded per process).
    known = loaded_with(["abc1234"], min_capacity=2, headroom=1.0, false_positive_rate=1e-9)
    for _ in range(3):  # created here: added by the creation, its invalidation and its notification
        known.add("created1")
    assert known.count == 2 and not known.needs_reload
    known.begin_load(2)
    known.add("created2")
    known.add("created2")
    known.load(["abc1234", "created1"])
    known.finish_load()
    assert known.count == 3  # the two loaded, and created2 once


def fill_to(known: KnownCodes, count: int) -> None:
    """Add codes the filter has not seen (a false positive would not be counted) up to `count`."""
    candidates = (f"code{i}" for i in itertools.count())
    while known.count < count:
        code = next(candidates)
        if not known.may_exist(code):
            known.add(code)


def test_capacity_is_the_expected_count_times_the_headroom_or_the_minimum():
    small = loaded_with([], min_capacity=1000, headroom=2.0)
    fill_to(small, 1000)
    assert not small.needs_reload  # the minimum applies to an empty table
    fill_to(small, 1001)
    assert small.needs_reload
    roomy = KnownCodes(min_capacity=1, headroom=2.0)
    roomy.begin_load(100)
    roomy.finish_load()
    fill_to(roomy, 200)
    assert not roomy.needs_reload  # 100 expected, twice that fits
    fill_to(roomy, 201)
    assert roomy.needs_reload


def test_never_loaded_filters_never_need_a_reload():
    known = KnownCodes(min_capacity=1)
    for i in range(10):
        known.add(f"code{i}")
    assert not known.needs_reload


@pytest.mark.parametrize("step", ["load", "finish_load"])
def test_loading_before_begin_load_is_an_error(step):
    known = KnownCodes()
    with pytest.raises(RuntimeError, match="begin_load"):
        known.load(["abc1234"]) if step == "load" else known.finish_load()
    assert not known.loaded


def test_size_grows_with_capacity_and_counts_a_filter_being_built():
    small = loaded_with([], min_capacity=100_000)
    # ~1 byte per code of capacity at the default 2%
    assert 95_000 <= small.size_bytes <= 110_000
    large = loaded_with([], min_capacity=1_000_000)
    assert 950_000 <= large.size_bytes <= 1_100_000
    large.begin_load(0)  # the new one (min capacity) is held beside the current one
    assert large.size_bytes > 1_000_000 + 100_000


def test_recent_codes_holds_what_was_added_and_nothing_else():
    recent = RecentCodes(slots=8)
    recent.add("abc")
    assert "abc" in recent
    assert "ab" not in recent and "bc" not in recent and "abcd" not in recent  # whole codes only
    assert "héllo" not in recent  # a non-ASCII code is never stored, so never found


def test_recent_codes_forget_the_oldest_once_every_slot_was_used():
    recent = RecentCodes(slots=4)
    for code in ("c1", "c2", "c3", "c4", "c5"):
        recent.add(code)
    assert "c1" not in recent
    assert all(code in recent for code in ("c2", "c3", "c4", "c5"))


def test_a_code_of_the_longest_length_fits_its_slot_exactly():
    recent = RecentCodes(slots=2, max_code_length=5)
    recent.add("abcde")
    recent.add("vwxyz")
    assert "abcde" in recent and "vwxyz" in recent and "abcdev" not in recent


def test_a_code_created_in_one_forked_process_is_recent_in_the_others():
    recent = RecentCodes(slots=16)
    known = loaded_with(["old"], recent=recent)
    pid = os.fork()
    if pid == 0:  # a worker that creates a link
        known.created("made-in-child")
        os._exit(0)
    os.waitpid(pid, 0)
    assert "made-in-child" in recent
    assert known.may_exist("made-in-child")  # this process's Bloom filter never saw it


def test_created_codes_are_in_the_filter_and_the_recent_codes():
    recent = RecentCodes(slots=16)
    known = loaded_with(["old"], recent=recent)
    known.created("new-one")
    assert "new-one" in recent and known.may_exist("new-one")
    known.add("notified")  # a notification: this process only
    assert "notified" not in recent and known.may_exist("notified")


def test_a_lock_left_held_by_a_dead_writer_marks_the_ring_broken_and_the_filter_untrusted(monkeypatch):
    recent = RecentCodes(slots=8)
    monkeypatch.setattr(RecentCodes, "LOCK_TIMEOUT", 0.01)
    known = loaded_with(["old"], recent=recent)
    assert not known.may_exist("never-made")
    recent._write_lock.acquire()  # as a worker killed inside the critical section leaves it
    recent.add("made-meanwhile")
    assert recent.broken
    assert known.may_exist("never-made")  # every miss asks the database now: never a wrong 404
    recent.add("another")  # returns at once: the ring is not waited for again


def test_a_cached_miss_of_a_code_created_by_another_worker_is_not_trusted():
    from app.services.link_cache import UNCACHED, LinkCache

    recent = RecentCodes(slots=8)
    here = LinkCache(known_codes=loaded_with([], recent=recent), notified_ttl=300)
    elsewhere = loaded_with([], recent=recent)
    here.put("promo1", None)  # probed before it existed
    assert here.get("promo1") is None
    elsewhere.created("promo1")  # another worker creates it and answers 201
    assert here.get("promo1") is UNCACHED
