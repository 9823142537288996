from __future__ import annotations

import pytest

from service.domain.codes import CodeSet, is_modifier, is_procedure_code, npi_is_valid, parse_code_range


@pytest.mark.parametrize("code", ["99213", "0001F", "0591T", "J1100", "A0425"])
def test_procedure_code_shapes(code: str) -> None:
    assert is_procedure_code(code)


@pytest.mark.parametrize("code", ["9921", "992133", "99213 ", "j1100", "0001X", "JJ100", ""])
def test_not_procedure_codes(code: str) -> None:
    assert not is_procedure_code(code)


def test_modifiers() -> None:
    assert is_modifier("25") and is_modifier("RT") and is_modifier("59")
    assert not is_modifier("2") and not is_modifier("rt") and not is_modifier("250")


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("99202-99215", ["99202", "99213", "99215"], ["99201", "99216", "0001F", "J9999"]),
        ("0001F-0009F", ["0001F", "0005F", "0009F"], ["0010F", "00001", "0005T", "0000F"]),
        ("J1000-J9999", ["J1000", "J1100", "J9999"], ["J0999", "K1000", "10000", "0001F"]),
        ("27447", ["27447"], ["27446", "27448"]),
        ("A0021-V5364", ["A0021", "E0100", "V5364"], ["A0020", "V5365", "99213"]),
    ],
)
def test_code_ranges_with_letters(text: str, inside: list[str], outside: list[str]) -> None:
    code_range = parse_code_range(text)
    assert [c for c in inside if not code_range.contains(c)] == []
    assert [c for c in outside if code_range.contains(c)] == []
    assert str(code_range) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("99215-99202", "low end above"),
        ("0001F-99999", "different shapes"),
        ("0001F-0009T", "different shapes"),
        ("9921-99215", "not a CPT or HCPCS"),
        ("1-2-3", "neither a code nor"),
    ],
)
def test_bad_ranges_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_code_range(text)


def test_code_set_matches_any_of_its_ranges() -> None:
    codes = CodeSet.parse(["70551-70553", "27447", "J1000-J9999"])
    assert codes.contains("70552") and codes.contains("27447") and codes.contains("J3490")
    assert not codes.contains("70554") and not codes.contains("99213")
    assert codes.as_strings() == ["70551-70553", "27447", "J1000-J9999"]
    assert not CodeSet().contains("99213")


@pytest.mark.parametrize("npi", ["1234567893", "1987654328", "1555555550"])
def test_valid_npis(npi: str) -> None:
    assert npi_is_valid(npi)


@pytest.mark.parametrize("npi", ["1234567890", "1234567894", "123456789", "12345678930", "123456789X", ""])
def test_invalid_npis(npi: str) -> None:
    assert not npi_is_valid(npi)
