"""Short code generation and shape checks."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from app.services import codes


def test_generate_code_has_requested_length_and_alphabet():
    for length in (4, 7, 12):
        code = codes.generate_code(length)
        assert len(code) == length and set(code) <= set(codes.ALPHABET)


def test_generate_code_is_not_predictable():
    assert len({codes.generate_code(7) for _ in range(1000)}) == 1000


def as_number(code: str) -> int:
    """The draw generate_code writes as `code` (its first character is the lowest base-62 digit)."""
    return sum(codes.ALPHABET.index(char) * len(codes.ALPHABET) ** place for place, char in enumerate(code))


def test_generate_code_never_returns_a_reserved_word(monkeypatch):
    draws = iter([as_number("shorten"), as_number("abcdefg")])
    monkeypatch.setattr(codes, "randbelow", lambda limit: next(draws))
    assert codes.generate_code(7) == "abcdefg"


def test_generated_codes_use_every_character_of_the_alphabet_in_every_position():
    drawn = [codes.generate_code(3) for _ in range(20_000)]
    for position in range(3):
        assert {code[position] for code in drawn} == set(codes.ALPHABET)


def test_generate_code_draws_below_the_number_of_codes_of_that_length(monkeypatch):
    limits = []

    def draw(limit):
        limits.append(limit)
        return limit - 1  # the largest draw: every digit is the last character

    monkeypatch.setattr(codes, "randbelow", draw)
    assert codes.generate_code(4) == codes.ALPHABET[-1] * 4
    assert limits == [len(codes.ALPHABET) ** 4]


def test_randbelow_stays_below_the_limit_and_reaches_every_value():
    for limit in (1, 2, 3, 62, 256, 257, 62**7):
        drawn = [codes.randbelow(limit) for _ in range(3000)]
        assert all(0 <= number < limit for number in drawn)
        assert len(set(drawn)) == min(limit, 3000) or (limit > 3000 and len(set(drawn)) > 2990)


def test_randbelow_favours_no_value():
    # 200 values from one byte: `byte % 200` would draw 0-55 twice as often as 56-199.
    counts = Counter(codes.randbelow(200) for _ in range(100_000))
    low = sum(counts[number] for number in range(56)) / 56
    high = sum(counts[number] for number in range(56, 200)) / 144
    assert abs(low / high - 1) < 0.1


def test_randbelow_uses_each_random_byte_once_across_refills(monkeypatch):
    fetched = []

    def urandom(size: int) -> bytes:
        fetched.append(size)
        return bytes(range(len(fetched) * 10, len(fetched) * 10 + 4))

    monkeypatch.setattr(codes, "_random_bytes", codes._RandomBytes())
    monkeypatch.setattr(codes, "RANDOM_BATCH", 4)
    monkeypatch.setattr(codes.os, "urandom", urandom)
    assert [codes.randbelow(255) for _ in range(6)] == [10, 11, 12, 13, 20, 21]  # one byte each
    assert fetched == [4, 4]


def test_a_forked_process_never_draws_the_bytes_its_parent_fetched():
    codes.generate_code(7)  # this thread now holds fetched bytes that the child inherits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, "".join(codes.generate_code(7) for _ in range(20)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    in_child = os.read(read, 4096).decode()
    os.close(read)
    os.close(write)
    in_parent = "".join(codes.generate_code(7) for _ in range(20))
    assert len(in_child) == len(in_parent) == 140 and in_child != in_parent


@pytest.mark.parametrize("code", ["a", "Abc1234", "Z" * 64, "my-alias_2", "Health"])
def test_is_well_formed_accepts_alphabet_codes(code):
    assert codes.is_well_formed(code)


@pytest.mark.parametrize(
    "code", ["", "a" * 65, "abc.12", "ab c", "ab/c", "é", "a\n", "1;DROP", "health", "urls"]
)
def test_is_well_formed_refuses_other_codes(code):
    assert not codes.is_well_formed(code)
