"""The whole service, started the way an operator starts it (`encore serve`), for HTTP tests.

Each test module gets its own service (Ray, Serve with HAProxy, actors) on a throwaway
database; the fixture stops every process it started, the whole process group at the end.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import httpx
import pytest

from harness.service import ROOT, LiveService, one_service_at_a_time, start_service, stop_service

__all__ = ["LiveService", "Person", "make_admin", "one_service_at_a_time", "start_service", "stop_service"]


@pytest.fixture(scope="module")
def mysql_service(make_mysql_database, tmp_path_factory, request):
    """The service on a fresh MariaDB database; a module may set SERVICE_SETTINGS = {...}."""
    settings = getattr(request.module, "SERVICE_SETTINGS", {})
    with one_service_at_a_time():
        service = start_service(make_mysql_database(), tmp_path_factory.mktemp("svc") / "service.log", **settings)
        yield service
        stop_service(service.process)


@pytest.fixture(scope="module")
def sqlite_service(tmp_path_factory, request):
    settings = getattr(request.module, "SERVICE_SETTINGS", {})
    folder = tmp_path_factory.mktemp("svc")
    with one_service_at_a_time():
        service = start_service(f"sqlite:///{folder}/encore.db", folder / "service.log", **settings)
        yield service
        stop_service(service.process)


def make_admin(service: LiveService, username: str, password: str = "admin-password-1") -> None:
    """Admins are made by the operator command, never through the API."""
    done = subprocess.run(
        [sys.executable, "-m", "encore.cli", "admin", "create", username, "--password", password],
        cwd=ROOT, env=service.env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr


class Person:
    """One member driving the API the way the web page does."""

    def __init__(self, service: LiveService, name: str | None = None, password: str = "correct-horse-9", sign_up: bool = True):
        self.http = service.client()
        self.username = name or f"p{uuid.uuid4().hex[:10]}"
        self.password = password
        if sign_up:
            created = self.http.post("/api/members", json={"username": self.username, "password": password, "nickname": self.username})
            assert created.status_code == 201, created.text
        self.login()
        self.id = self.http.get("/api/me").json()["id"]
        self.admission: str | None = None

    def login(self) -> None:
        answer = self.http.post("/api/sessions", json={"username": self.username, "password": self.password})
        assert answer.status_code == 200, answer.text
        self.http.headers["Authorization"] = f"Bearer {answer.json()['token']}"

    def queue_until_admitted(self, seconds: float = 30) -> str:
        ticket = self.http.post("/api/queue").json()["ticket"]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            answer = self.http.get("/api/queue", params={"ticket": ticket}).json()
            if answer["state"] == "admitted":
                self.admission = answer["admission_token"]
                return self.admission
            time.sleep(0.2)
        raise AssertionError("not admitted in time")

    def write_headers(self, key: str | None = None) -> dict:
        return {"X-Admission-Token": self.admission or "", "Idempotency-Key": key or uuid.uuid4().hex}

    def hold(self, seat_ids, key: str | None = None) -> httpx.Response:
        return self.http.post("/api/holds", json={"seat_ids": list(seat_ids)}, headers=self.write_headers(key))

    def pay(self, booking_id: str, provider: str = "mockpay", key: str | None = None) -> httpx.Response:
        return self.http.post(f"/api/bookings/{booking_id}/payments", json={"provider": provider}, headers=self.write_headers(key))

    def checkout(self, payment: dict, result: str) -> httpx.Response:
        return self.http.post(payment["redirect_url"], json={"result": result})

    def booking(self, booking_id: str) -> dict:
        answer = self.http.get(f"/api/bookings/{booking_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()
