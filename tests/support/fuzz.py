"""Schema-driven fuzzing (schemathesis + hypothesis), shared by the suite
(tests/integration/test_api_fuzz.py, a small seeded run) and bench/fuzz.py (thousands of
requests per role).

For every operation of the live OpenAPI document and one role's key, cases are generated with
positive data (valid for the schema) and negative data (at least one part invalid) and sent to
the app on a loopback port. Nothing is asserted mid-run: every request is counted and every
breach of the rules below is kept as a `Finding`, so one run reports all it found.

Rules: no 5xx; every 4xx is a problem document (application/problem+json, a stable upper-case
`code`, its `status` the response's, no traceback); the role's own routes get past
authentication and the others are refused. Negative data answered with 2xx is counted as
"accepted invalid" (not a finding: the app may ignore what it does not use).
"""

import re
import time
import zlib
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from sqlalchemy import select

from digital_contrast.api.deps import API_KEY_HEADER
from digital_contrast.api.problems import MEDIA_TYPE
from digital_contrast.api.roles import PUBLIC, ROUTE_ROLES
from digital_contrast.store import Role
from digital_contrast.store.tables import ApiKey
from tests.support.service import Service

MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Arbitrary bytes (and an empty archive) for the zip upload body.
schemathesis.openapi.media_type(
    "application/zip", st.binary(max_size=4096) | st.just(b"PK\x05\x06" + b"\0" * 18))
_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
# Codes that mean "authenticated and authorised for the route, refused another site's data or a
# role the caller may not grant (a fuzzed parameter or body)": past authentication.
_PAST_AUTH_REFUSALS = ("SITE_FORBIDDEN", "ROLE_FORBIDDEN")


@dataclass(frozen=True)
class Finding:
    role: str
    mode: str
    operation: str
    status: int
    rule: str
    request: str  # a curl command without the key: enough to replay it

    def __str__(self) -> str:
        return f"[{self.role}/{self.mode}] {self.operation} -> {self.status}: {self.rule}\n" \
               f"    {self.request}"


@dataclass
class Tally:
    """What one or more runs sent and got."""

    requests: Counter[str] = field(default_factory=Counter)  # by generation mode
    outcomes: Counter[str] = field(default_factory=Counter)  # "2xx", "4xx CODE", "5xx CODE"
    auth: Counter[str] = field(default_factory=Counter)  # past auth / refused / unrouted
    accepted_invalid: Counter[str] = field(default_factory=Counter)  # "operation (location)"
    accepted_example: dict[str, str] = field(default_factory=dict)  # the first of each
    seconds: dict[str, list[float]] = field(default_factory=dict)  # by operation
    findings: list[Finding] = field(default_factory=list)
    no_negative: list[str] = field(default_factory=list)  # operations with nothing to break
    out_of_time: bool = False

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def add(self, other: "Tally") -> None:
        self.requests += other.requests
        self.outcomes += other.outcomes
        self.auth += other.auth
        self.accepted_invalid += other.accepted_invalid
        self.accepted_example = other.accepted_example | self.accepted_example
        for label, values in other.seconds.items():
            self.seconds.setdefault(label, []).extend(values)
        self.findings += other.findings
        self.no_negative += [label for label in other.no_negative
                             if label not in self.no_negative]
        self.out_of_time |= other.out_of_time


def load_schema(service: Service) -> schemathesis.BaseSchema:
    """The app's own OpenAPI document, as served."""
    return schemathesis.openapi.from_dict(service.client.get("/openapi.json").json())


def operations(schema: schemathesis.BaseSchema) -> Iterator:
    for result in schema.get_all_operations():
        yield result.ok()


def _content_type(response: Response) -> str:
    return (response.headers.get("content-type") or [""])[0]


def _problem_breach(response: Response) -> str | None:
    """Why a 4xx is not a proper problem document, or None."""
    if not _content_type(response).startswith(MEDIA_TYPE):
        return f"4xx not {MEDIA_TYPE}: {_content_type(response)!r}"
    if "Traceback" in response.text:
        return "traceback in the body"
    body = response.json()
    if not isinstance(body.get("code"), str) or not _CODE.fullmatch(body["code"]):
        return f"no stable code: {body.get('code')!r}"
    if body.get("status") != response.status_code:
        return f"status {body.get('status')!r} in the body"
    return None


# Transport headers every request carries, and the key (filtered anyway): left out of replays.
_NOISE = re.compile(r" -H '(User-Agent|Accept-Encoding|Accept|Connection|X-API-Key|"
                    r"X-Schemathesis-TestCaseId): [^']*'")


def replay(case) -> str:
    """A curl command for the case, without the key and the usual transport headers."""
    return _NOISE.sub("", case.as_curl_command())


def _restore_keys(service: Service) -> None:
    """Undo a fuzzed revocation of the run's own keys (DELETE /v1/keys/{small id} is a valid
    request an admin may make): every role must keep its key for the rest of the run."""
    prefixes = [plaintext.split("_")[1] for plaintext in service.keys.values()]
    with service.state.sessions() as db:
        for key in db.scalars(select(ApiKey).where(ApiKey.prefix.in_(prefixes),
                                                  ApiKey.revoked_at.is_not(None))):
            key.revoked_at = None
        db.commit()


def fuzz_role(service: Service, schema: schemathesis.BaseSchema, base_url: str, role: Role, *,
              examples: int, seed_value: int, deadline: float | None = None,
              modes: tuple[GenerationMode, ...] = MODES,
              skip_negative: Collection[str] = ()) -> Tally:
    """Up to `examples` cases per operation and mode, sent with `role`'s key to `base_url`.
    Each (operation, mode) draws from its own seed derived from `seed_value`, so a run is
    the same given the same seed, whatever else ran before it. Cases drawn after `deadline`
    (time.monotonic()) are not sent and the tally says it ran out of time. `skip_negative`:
    operations an earlier run found nothing to make invalid in (finding it out costs time)."""
    tally = Tally()
    with requests.Session() as session:
        for operation in operations(schema):
            for mode in modes:
                if mode.is_negative and operation.label in skip_negative:
                    continue
                _fuzz_operation(service, operation, mode, role, base_url, session, examples,
                                zlib.crc32(f"{seed_value}:{operation.label}:{mode}".encode()),
                                deadline, tally)
    return tally


def _fuzz_operation(service: Service, operation, mode: GenerationMode, role: Role,
                    base_url: str, session: requests.Session, examples: int, case_seed: int,
                    deadline: float | None, tally: Tally) -> None:
    label = operation.label
    roles = ROUTE_ROLES[operation.method.upper(), operation.path]
    headers = service.headers(role)

    # No shrinking and no assertion inside: a breach is recorded and generation goes on.
    @seed(case_seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    # The key is fixed so that negative data breaks the request's data, not its key (a missing
    # or wrong key: tests/integration/test_api_auth.py).
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def run(case) -> None:
        if deadline is not None and time.monotonic() > deadline:
            tally.out_of_time = True
            return
        # Negative headers may drop the key itself ("violates required"), whatever we pass.
        sent = case.as_transport_kwargs(base_url=base_url, headers=headers)["headers"]
        keyed = any(name.lower() == API_KEY_HEADER.lower() for name in sent)
        allowed = roles == PUBLIC or (keyed and role in roles)
        start = time.perf_counter()
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
        tally.seconds.setdefault(label, []).append(time.perf_counter() - start)
        tally.requests[mode.value] += 1
        judge(service, case, response, role, mode, allowed, tally)

    try:
        run()
    except Unsatisfiable:  # nothing in the operation can be made invalid (no parameters)
        tally.no_negative.append(label)


def judge(service: Service, case, response: Response, role: Role, mode: GenerationMode,
          allowed: bool, tally: Tally) -> None:
    """Count one response and record every rule it breaks as a finding."""
    label, status = case.operation.label, response.status_code

    def breach(rule: str) -> None:
        tally.findings.append(Finding(role.value, mode.value, label, status, rule,
                                      replay(case)))

    if status >= 500:
        code = response.json().get("code", "?") \
            if _content_type(response).startswith(MEDIA_TYPE) else "?"
        tally.outcomes[f"5xx {code}"] += 1
        breach(f"server error {response.text[:200]!r}")
        return
    if status < 400:
        tally.outcomes[f"{status // 100}xx"] += 1
        meta = case.meta
        for location, info in (meta.components.items() if meta else ()):
            # Negative headers are a missing key or unknown extra headers: judged by the
            # authentication rule below, and extra headers are rightly ignored.
            if info.mode.is_negative and location != ParameterLocation.HEADER \
                    and 200 <= status < 300:
                what = f"{label} ({ParameterLocation(location).value})"
                tally.accepted_invalid[what] += 1
                tally.accepted_example.setdefault(what, replay(case))
        if case.operation.method.upper() == "DELETE" and case.operation.path.startswith(
                "/v1/keys"):
            _restore_keys(service)
    else:
        why = _problem_breach(response)
        if why is not None:
            tally.outcomes[f"{status // 100}xx (not a problem)"] += 1
            breach(why)
            return
        body = response.json()
        tally.outcomes[f"{status} {body['code']}"] += 1
        # A path value no route matches (a newline or slash in {path}) is answered by the
        # router itself, before any handler or data: neither past nor refused by auth.
        if status == 404 and body.get("detail") == "Not Found":
            tally.auth["unrouted"] += 1
            return
        # FastAPI reads and decodes a JSON body before it runs any dependency, ours included:
        # a body that is not JSON is refused before authentication, whoever sends it.
        if _undecodable_body(body):
            tally.auth["body refused before auth"] += 1
            return
    passed = status not in (401, 403) or response.json().get("code") in _PAST_AUTH_REFUSALS
    tally.auth["past auth" if passed else "refused"] += 1
    if passed != allowed:
        breach("got past authentication" if passed else "refused its own route")


def _undecodable_body(body: dict) -> bool:
    if body.get("code") == "REQUEST_INVALID" and \
            body.get("detail") == "the request body cannot be parsed":  # not UTF-8
        return True
    errors = body.get("errors") or [{}]
    return body.get("code") == "REQUEST_INVALID" and all(
        error.get("msg") == "JSON decode error" for error in errors)
