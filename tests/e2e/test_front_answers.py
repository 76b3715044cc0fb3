"""The front as a client meets it, on MariaDB, through the HTTP cache and Serve's HAProxy:
while the service starts, what the front itself refuses, and a fuzz of every route.

Every answer a client gets is either a normal one or a JSON problem with a ``code``: while
Serve is starting a 503 ``starting`` (Serve itself would say a plain-text 404), and the
front's own refusals too. The fuzz sends hostile types, sizes and encodings to every route of
/openapi.json without a session and with a session that was never admitted: no 5xx, every
4xx a problem, and no booking, claim or payment appears.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import httpx
import pytest

from harness import mysql
from harness.service import PORT, wait_until_port_free
from tests.e2e.conftest import Person, one_service_at_a_time, start_service, stop_service
from tests.e2e.helpers import settled_seat_status

pytestmark = pytest.mark.slow

STARTING_CODES = {"starting", "unavailable"}


class StartWatcher:
    """Asks the public port over and over while the service starts; keeps every answer."""

    REQUESTS = (("GET", "/healthz", None), ("GET", "/api/seats", None), ("POST", "/api/holds", {"seat_ids": [1]}))

    def __init__(self, url: str):
        self.url = url
        self.answers: list[tuple[str, int, str, str, str | None]] = []
        self.refused = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while not self.done.is_set():
                for method, path, body in self.REQUESTS:
                    try:
                        answer = http.request(method, path, json=body)
                        self.answers.append((f"{method} {path}", answer.status_code, answer.headers.get("content-type", ""),
                                             answer.text[:200], answer.headers.get("retry-after")))
                    except httpx.TransportError:
                        self.refused += 1
                time.sleep(0.05)


@pytest.fixture(scope="module")
def started(make_mysql_database, tmp_path_factory):
    """The service, with every answer the public port gave while it started."""
    with one_service_at_a_time():
        wait_until_port_free(PORT)
        watcher = StartWatcher(f"http://127.0.0.1:{PORT}")
        watcher.thread.start()
        try:
            service = start_service(make_mysql_database(), tmp_path_factory.mktemp("svc") / "service.log")
        finally:
            watcher.done.set()
            watcher.thread.join(10)
        yield service, watcher
        stop_service(service.process)


@pytest.fixture(scope="module")
def service(started):
    return started[0]


def problem_in(request: str, status: int, headers: dict[str, str], content: bytes) -> str | None:
    """What is wrong with an answer a client may get, or ``None``: no 5xx but a 503 with
    Retry-After, and every 4xx and 5xx a JSON problem with a code."""
    where = f"{request[:160]} -> {status}"
    if status >= 500 and not (status == 503 and headers.get("retry-after")):
        return f"{where}: a server error: {content[:200]!r}"
    if status >= 400:
        try:
            body = json.loads(content)
        except ValueError:
            return f"{where}: not JSON ({headers.get('content-type')}): {content[:200]!r}"
        if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not body["code"]:
            return f"{where}: no code: {content[:200]!r}"
    return None


def test_while_starting_every_answer_is_503_starting_or_a_normal_one(started):
    _, watcher = started
    starting = [a for a in watcher.answers if a[1] == 503]
    normal = {("GET /healthz", 200), ("GET /api/seats", 200), ("POST /api/holds", 401)}
    wrong = []
    for request, status, content_type, text, retry_after in watcher.answers:
        if status == 503:
            if content_type != "application/json" or retry_after is None or '"code":"' not in text:
                wrong.append((request, status, content_type, text))
            elif text.split('"code":"', 1)[1].split('"', 1)[0] not in STARTING_CODES:
                wrong.append((request, status, content_type, text))
        elif (request, status) not in normal or not content_type.startswith("application/json"):
            wrong.append((request, status, content_type, text))
    print(f"while starting: {len(starting)} answers 503, {len(watcher.answers) - len(starting)} others, "
          f"{watcher.refused} connections refused")
    assert not wrong, wrong[:10]
    assert any('"code":"starting"' in a[3] for a in starting), "never saw the front answer starting"


def test_the_fronts_own_refusals_are_json_problems_never_stored(service):
    with httpx.Client(base_url=service.url, timeout=10) as http:
        answers = {
            "uri_too_long": http.get("/api/seats?x=" + "a" * 20_000),
            "headers_too_large": http.get("/api/seats", headers={"X-Padding": "a" * 20_000}),
            "body_too_large": http.post("/api/holds", content=b"{" + b" " * 20_000 + b"}",
                                        headers={"Content-Type": "application/json"}),
        }
    statuses = {"uri_too_long": 414, "headers_too_large": 431, "body_too_large": 413}
    for code, answer in answers.items():
        assert (answer.status_code, answer.json()["code"]) == (statuses[code], code), answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["cache-control"] == "no-store"


# ---- the fuzz

FUZZ_EXAMPLES = {"positive": 5, "negative": 8}
# past this the fuzz stops where it is (a slow machine); every route must have had its turn anonymously
FUZZ_SECONDS_MAX = 55
HOSTILE_PATH_VALUES = ["%00", "..%2F..%2Fetc", "０１２３", "a" * 3000, "-1", "9" * 40, "%C0%AF", "' OR 1=1 --"]
HOSTILE_QUERIES = ["limit=%FF%FE&cursor=%00", "limit=" + "9" * 40, "cursor=%C2%B2", "ticket=" + "x" * 6000,
                   "type=%E2%80%AE&member_id=1e999", "limit=-1&limit=2"]
HOSTILE_BODIES = [
    (b"\xff\xfe\x00\x80not utf-8", {"Content-Type": "application/json"}),
    (b'{"seat_ids": "' + b"9" * 15_000 + b'"}', {"Content-Type": "application/json"}),
    (b'[[[]]]', {"Content-Type": "application/json"}),
    (b'"just a string"', {"Content-Type": "application/json"}),
    (b'{"seat_ids": [1e999], "username": null, "password": {}, "provider": [], "result": 7}',
     {"Content-Type": "application/json"}),
    (b"username=a&password=b", {"Content-Type": "application/x-www-form-urlencoded"}),
    (b"not gzip at all", {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    (b'{"username": "\\ud800", "password": "\\u0000"}', {"Content-Type": "application/json; charset=latin-1"}),
]


def store_counts(db_url: str) -> dict[str, int]:
    connection = mysql.connect(db_url)
    try:
        with connection.cursor() as cursor:
            counts = {}
            for table in ("bookings", "booking_seats", "seat_claims", "payments"):
                cursor.execute(f"SELECT COUNT(*) FROM {table}")
                counts[table] = cursor.fetchone()[0]
            return counts
    finally:
        connection.close()


def hostile_requests(method: str, path: str) -> list[tuple[str, str, bytes | None, dict]]:
    """Hand-made hostile requests for one operation: path values, queries, bodies."""
    fill = lambda value: re.sub(r"\{[^}]+\}", value, path)  # noqa: E731
    requests = [(method, fill(value), None, {}) for value in HOSTILE_PATH_VALUES if "{" in path]
    requests += [(method, f"{fill('mockpay')}?{query}", None, {}) for query in HOSTILE_QUERIES]
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        requests += [(method, fill("mockpay"), body, headers) for body, headers in HOSTILE_BODIES]
    return requests


def test_fuzzing_every_route_without_admission_changes_nothing_and_every_refusal_is_a_problem(service):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    member = Person(service)
    identities = {"anonymous": {}, "never admitted": {"Authorization": member.http.headers["Authorization"],
                                                       "X-Admission-Token": "not-" + uuid.uuid4().hex}}
    with service.client() as http:
        before = (store_counts(service.db_url), settled_seat_status(http))
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    started = time.monotonic()
    problems: list[str] = []
    covered: set[tuple[str, str]] = set()
    calls = 0

    def check(request: str, status: int, headers: dict[str, str], content: bytes) -> None:
        nonlocal calls
        calls += 1
        if (problem := problem_in(f"{name}: {request}", status, headers, content)) is not None:
            problems.append(problem)

    turns = [(name, headers, operation) for name, headers in identities.items() for operation in operations]
    with httpx.Client(base_url=service.url, timeout=30) as http:
        for name, headers, operation in turns:
            if time.monotonic() - started > FUZZ_SECONDS_MAX:
                break
            for method, path, body, extra in hostile_requests(operation.method.upper(), operation.path):
                answer = http.request(method, path, content=body, headers={**headers, **extra})
                check(f"{method} {path}", answer.status_code, dict(answer.headers), answer.content)
            for mode, examples in FUZZ_EXAMPLES.items():

                @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
                @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                def run(case):
                    try:
                        answer = case.call(base_url=service.url, headers=headers, timeout=30)
                    except Exception:  # noqa: BLE001 - a request the client library cannot send reaches no one
                        return
                    check(f"{case.method} {answer.request.url}", answer.status_code,
                          {key: values[-1] for key, values in answer.headers.items()}, answer.content)

                try:
                    run()
                except Unsatisfiable:
                    pass  # no parameter to make invalid
            covered.add((name, operation.label))

    with service.client() as http:
        after = (store_counts(service.db_url), settled_seat_status(http))
    print(f"fuzz: {calls} calls, {len(covered)} of {len(turns)} operation turns "
          f"in {time.monotonic() - started:.0f} s")
    assert not problems, "\n".join(problems[:30])
    assert {label for name, label in covered if name == "anonymous"} == {o.label for o in operations}
    assert after == before
    assert member.http.get("/api/me/bookings").json()["bookings"] == []
