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


def test_generate_code_never_returns_a_reserved_word(monkeypatch):
    draws = iter("shorten" + "abcdefg")
    monkeypatch.setattr(codes.secrets, "choice", lambda alphabet: next(draws))
    assert codes.generate_code(7) == "abcdefg"


@pytest.mark.parametrize("code", ["a", "Abc1234", "Z" * 64, "my-alias_2", "Health"])
def test_is_well_formed_accepts_alphabet_codes(code):
    assert codes.is_well_formed(code)


@pytest.mark.parametrize(
    "code", ["", "a" * 65, "abc.12", "ab c", "ab/c", "é", "a\n", "1;DROP", "health", "urls"]
)
def test_is_well_formed_refuses_other_codes(code):
    assert not codes.is_well_formed(code)
