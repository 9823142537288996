"""The request hash must not change between versions: a resubmission is compared with the hash
stored when the claim was first submitted (a different hash answers 409)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.api.schemas.claims import ClaimIn
from service.services.claims import canonical_claim, request_hash


def reference_hash(canonical: dict[str, Any]) -> str:
    """The hash as the first versions computed it."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# Any text: quotes, backslashes, control characters, non-ASCII, astral-plane characters.
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | text
lines = st.lists(
    st.fixed_dictionaries(
        {"procedure_code": text, "modifiers": st.lists(text, max_size=3), "units": st.integers(1, 99)},
        optional={"billed_amount": text, "authorization_number": st.none() | text},
    ),
    max_size=4,
)
canonicals = st.dictionaries(text, scalars, max_size=6).flatmap(
    lambda extra: st.fixed_dictionaries({"claim_id": text, "lines": lines}).map(lambda d: {**extra, **d})
)


@given(canonicals)
def test_request_hash_is_the_json_dumps_hash(canonical: dict[str, Any]) -> None:
    assert request_hash(canonical) == reference_hash(canonical)


def test_request_hash_of_escapes_non_ascii_text_and_big_integers() -> None:
    for value in ['a"b', "a\\b", "tab\there", "\x7f", "é", "\u2028", "😀", "\x00", 2**64]:
        canonical = {"claim_id": value, "lines": [{"procedure_code": value, "modifiers": [value]}]}
        assert request_hash(canonical) == reference_hash(canonical), value


def test_request_hash_of_real_claims_is_the_json_dumps_hash() -> None:
    body = {
        "claim_id": "C-1",
        "member_id": "M-1",
        "billing_provider_npi": "1234567893",
        "place_of_service": "11",
        "emergency": True,
        "diagnosis_codes": ["J069", "R05.9"],
        "lines": [
            {
                "line_number": 2,
                "procedure_code": "99213",
                "modifiers": ["25"],
                "units": 1,
                "billed_amount": 1e2,
                "service_date": "2026-03-01",
                "authorization_number": "A-7",
            },
            {
                "line_number": 1,
                "procedure_code": "G0439",
                "units": 3,
                "billed_amount": "0.10",
                "service_date": "2026-03-02",
            },
        ],
    }
    for claim in (
        ClaimIn.model_validate(body),
        ClaimIn.model_validate({**body, "received_date": "2026-03-05"}),
    ):
        canonical = canonical_claim(claim)
        assert request_hash(canonical) == reference_hash(canonical)


def test_values_json_cannot_write_are_refused_as_before() -> None:
    for value in (date(2026, 1, 1), object()):
        with pytest.raises(TypeError):
            request_hash({"claim_id": value})
        with pytest.raises(TypeError):
            reference_hash({"claim_id": value})
