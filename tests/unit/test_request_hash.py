"""The request hash must not change between versions: a resubmission is compared with the hash
stored when the claim was first submitted (a different hash answers 409)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from service.services.claims import request_hash


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
