"""Schema-driven fuzzing (schemathesis) of every operation, once per role with a valid key, with
positive and negative data (tests/support/fuzz.py; the heavy run is bench/fuzz.py): no 5xx,
every error is a problem document, and the role's own routes get past authentication."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from schemathesis.generation import GenerationMode

from digital_contrast.api.problems import MEDIA_TYPE
from digital_contrast.store import Role
from tests.support.fuzz import Tally, fuzz_role, judge, load_schema
from tests.support.service import live_server, make_settings, running_service

EXAMPLES_PER_OPERATION = 5  # per mode: about two hundred requests per role
SEED = 18


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path):
    settings = make_settings(tmp_path_factory.mktemp("fuzz"), empty_registry_db,
                             max_upload_bytes=5_000_000)
    with running_service(settings) as running:
        yield running


@pytest.mark.req("SRS-API-002", "SRS-API-001", "SRS-FUZZ-001")
@pytest.mark.parametrize("role", list(Role))
def test_no_server_error_for_any_generated_request(service, role: Role) -> None:
    with live_server(service.app) as base:
        tally = fuzz_role(service, load_schema(service), base, role,
                          examples=EXAMPLES_PER_OPERATION, seed_value=SEED)
    assert not tally.findings, "\n".join(map(str, tally.findings))
    # Stated share: both kinds of data were sent, and the role's own routes were reached
    # (every call to them got past authentication, checked per call by the driver).
    assert tally.requests["positive"] > 0 and tally.requests["negative"] > 0, tally.requests
    assert tally.auth["past auth"] >= 3, tally.auth


@dataclass
class _Reply:
    """A response as the driver reads it (schemathesis' headers are lists)."""

    status_code: int
    text: str
    content_type: str = MEDIA_TYPE

    @property
    def headers(self) -> dict[str, list[str]]:
        return {"content-type": [self.content_type]}

    def json(self) -> dict:
        return json.loads(self.text)


@pytest.mark.req("SRS-FUZZ-001")
def test_the_driver_reports_what_breaks_the_rules(service) -> None:
    """A clean run means something: a 500, a 4xx that is not a problem document, and a refusal
    of the role's own route are each a finding; a proper 4xx is not."""
    schema = load_schema(service)
    (operation,) = [op.ok() for op in schema.get_all_operations() if op.ok().label ==
                    "GET /v1/jobs"]
    case = operation.Case(query={"limit": 5})
    replies = [_Reply(500, '{"code": "INTERNAL_ERROR", "status": 500}'),
               _Reply(404, "Not Found", "text/plain"),
               _Reply(403, '{"code": "AUTH_FORBIDDEN", "status": 403}'),
               _Reply(422, '{"code": "REQUEST_INVALID", "status": 422}')]
    tally = Tally()
    for reply in replies:
        judge(service, case, reply, Role.CLINICIAN, GenerationMode.POSITIVE, True, tally)
    assert [finding.status for finding in tally.findings] == [500, 404, 403], tally.findings
    assert tally.outcomes["5xx INTERNAL_ERROR"] == 1 and tally.outcomes["422 REQUEST_INVALID"]
