"""Short code generation and shape checks."""

from __future__ import annotations

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
    monkeypatch.setattr(codes.secrets, "randbelow", lambda limit: next(draws))
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

    monkeypatch.setattr(codes.secrets, "randbelow", draw)
    assert codes.generate_code(4) == codes.ALPHABET[-1] * 4
    assert limits == [len(codes.ALPHABET) ** 4]


@pytest.mark.parametrize("code", ["a", "Abc1234", "Z" * 64, "my-alias_2", "Health"])
def test_is_well_formed_accepts_alphabet_codes(code):
    assert codes.is_well_formed(code)


@pytest.mark.parametrize(
    "code", ["", "a" * 65, "abc.12", "ab c", "ab/c", "é", "a\n", "1;DROP", "health", "urls"]
)
def test_is_well_formed_refuses_other_codes(code):
    assert not codes.is_well_formed(code)
