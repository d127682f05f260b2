"""Schemathesis against the generated OpenAPI description: random valid and invalid requests for
every operation, with and without an admin key; no 5xx, every answer as described.

Driven through hypothesis directly: schemathesis's pytest plugin does not run under pytest 9.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories import make_key, make_user

CHECKS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def operations(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_the_description_covers_every_operation(app):
    labels = {operation.label for operation in operations(app)}
    assert {"POST /shorten", "GET /{code}", "PATCH /urls/{code}", "GET /health"} <= labels


@pytest.mark.parametrize("as_admin", [False, True], ids=["anonymous", "admin"])
def test_every_operation_answers_as_described(app, as_admin):
    headers = (
        {"Authorization": f"Bearer {make_key(make_user('fuzz-admin', role='admin'))}"} if as_admin else {}
    )
    failures = []
    for operation in operations(app):

        @CHECKS
        @given(case=operation.as_strategy())
        def check(case) -> None:
            # Not every rule fits a JSON schema (a URL must be public, an alias free...), so schema-valid
            # input may still be refused with a 400/410: that check is left out, all others run.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as error:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
