"""Schemathesis hooks for fuzzing Rappel's GraphQL API (loaded by fuzz/run through
SCHEMATHESIS_HOOKS).

The one check that matters: whatever the input, Rappel answers without a 5xx and every GraphQL
error carries an `extensions.code` other than INTERNAL. Input mistakes are the caller's
(BAD_USER_INPUT, NOT_FOUND, ...), never the server's.

The scalar strategies mix values that exist or parse (small ids, real dates) with junk, control
characters, bidi overrides and long strings, so the fuzzer reaches the resolvers' rules instead
of stopping at NOT_FOUND or at a scalar's parser.
"""

import atexit
import base64
import collections
import json
import os

import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

SEEN = collections.Counter()


def _write_tally():
    path = os.environ.get("RAPPEL_FUZZ_TALLY")
    if path:
        with open(path, "w", encoding="utf-8") as tally:
            json.dump(SEEN, tally, indent=1, sort_keys=True)


atexit.register(_write_tally)


@schemathesis.check
def no_internal_error(ctx, response, case):
    """No 5xx, and every GraphQL error carries a code other than INTERNAL."""
    SEEN["cases"] += 1
    SEEN[f"http {response.status_code}"] += 1
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except Exception as error:  # noqa: BLE001 - any non-JSON answer is a failure
        raise AssertionError(f"the answer is not JSON: {error}") from error
    errors = body.get("errors") or []
    if not errors:
        SEEN["answered without error"] += 1
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        SEEN[f"code {code}"] += 1
        if code is None:
            raise AssertionError(f"an error without extensions.code: {error.get('message')}")
        if code == "INTERNAL":
            raise AssertionError(f"INTERNAL: {error.get('message')}")


def global_id(kind, row):
    """Rappel's global id: base64url without padding of "Kind:row" (src/domain/gid.rs)."""
    return base64.urlsafe_b64encode(f"{kind}:{row}".encode()).decode().rstrip("=")


ID_KINDS = [
    "Firm", "Category", "Service", "ServiceItem", "Client", "Contact", "Mission", "MissionLine",
    "Task", "InformationRequest", "RequestAnswer", "AnswerFile", "StaffMember",
    "WebhookEndpoint", "Delivery", "HeldReply", "HistoryEntry",
]

schemathesis.graphql.scalar(
    "ID",
    st.one_of(
        # Mostly ids of real rows of any type (the wrong type is BAD_USER_INPUT), some garbage.
        st.builds(global_id, st.sampled_from(ID_KINDS), st.integers(min_value=1, max_value=12)),
        st.integers(min_value=1, max_value=12).map(str),
        st.text(max_size=8),
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "Date",
    st.one_of(
        st.dates().map(lambda day: day.isoformat()),
        st.text(max_size=12),
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "String",
    st.one_of(
        st.text(max_size=30),
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
        st.sampled_from(["a\x00b", "\u202eevil", "\u200b", "x" * 5000, "", " ", "é@example.fr"]),
    ).map(nodes.String),
)
