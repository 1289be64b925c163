"""Sign-in throttling: repeated wrong passwords are refused for a while, on the API and the
dashboard, without locking out other people or other addresses."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hub import db
from hub.app import create_app
from hub.auth import Role, create_user
from hub.throttle import Limits, SignInThrottle, refusal

PASSWORD = "a long passphrase"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: SignInThrottle, name: str, client: str) -> None:
    """An attempt with the wrong password: started, and never forgiven."""
    assert throttle.attempt(name, client) == 0


def test_a_name_from_one_address_is_refused_after_five_failures_until_they_age_out():
    clock = Clock()
    throttle = SignInThrottle(clock=clock)
    for _ in range(5):
        fail(throttle, "nadia", "10.0.0.1")
        clock.now += 10
    # The first of the five failures was 50 s ago: it ages out in 15 min minus 50 s.
    assert throttle.attempt("nadia", "10.0.0.1") == 15 * 60 - 50
    assert throttle.attempt("nadia", "10.0.0.2") == 0, "another address is not refused"
    assert throttle.attempt("olga", "10.0.0.1") == 0, "another name is not refused"
    clock.now += 15 * 60 - 50
    assert throttle.attempt("nadia", "10.0.0.1") == 0


def test_one_address_trying_many_names_is_refused_but_no_one_can_lock_out_a_name():
    throttle = SignInThrottle(Limits(per_name_and_client=5, per_client=10), clock=Clock())
    for i in range(10):
        fail(throttle, f"name-{i}", "10.0.0.9")
    assert throttle.attempt("someone-new", "10.0.0.9") > 0
    for i in range(200):
        fail(throttle, "nadia", f"10.1.{i // 256}.{i % 256}")
    assert throttle.attempt("nadia", "10.2.0.1") == 0, "the admin still signs in from home"


def test_an_ipv6_subscriber_is_one_client_however_many_addresses_they_use():
    throttle = SignInThrottle(Limits(per_name_and_client=50, per_client=3), clock=Clock())
    for i in range(3):
        fail(throttle, f"name-{i}", f"2001:db8:1:2::{i + 1:x}")
    assert throttle.attempt("someone", "2001:db8:1:2:ffff::1") > 0, "same /64"
    assert throttle.attempt("someone", "2001:db8:1:3::1") == 0, "another /64"
    for i in range(3):
        fail(throttle, f"name-{i}", "::ffff:192.0.2.7")
    assert throttle.attempt("someone", "192.0.2.7") > 0, "IPv4 mapped into IPv6 is IPv4"


def test_the_right_password_forgets_that_persons_mistakes_but_not_the_addresss():
    throttle = SignInThrottle(Limits(per_name_and_client=3, per_client=5), clock=Clock())
    for _ in range(2):
        fail(throttle, "nadia", "10.0.0.1")
    assert throttle.attempt("nadia", "10.0.0.1") == 0
    throttle.succeeded("nadia", "10.0.0.1")
    for _ in range(2):
        fail(throttle, "nadia", "10.0.0.1")
    assert throttle.attempt("nadia", "10.0.0.1") == 0, "two failures since the success"
    throttle.succeeded("nadia", "10.0.0.1")
    fail(throttle, "olga", "10.0.0.1")
    assert throttle.attempt("tim", "10.0.0.1") > 0, "the address has five failures"


def test_parallel_attempts_cannot_slip_past_the_limit():
    throttle = SignInThrottle(clock=Clock())
    started = [throttle.attempt("nadia", "10.0.0.1") for _ in range(20)]
    assert started.count(0) == 5, "each attempt counts from its start, before its password"


def test_memory_is_bounded_however_many_names_are_invented(monkeypatch):
    monkeypatch.setattr(SignInThrottle, "MAX_KEYS", 50)
    throttle = SignInThrottle(clock=Clock())
    for i in range(1000):
        fail(throttle, f"invented-{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._failures) == 50


def test_refusals_say_seconds_or_minutes():
    assert refusal(30) == "Too many failed sign-ins. Try again in 30 seconds."
    assert refusal(841) == "Too many failed sign-ins. Try again in 15 minutes."


@pytest.fixture
def app(hub_url):
    engine = db.connect(hub_url)
    create_user(engine, "nadia", PASSWORD, Role.NETWORK_ADMIN)
    create_user(engine, "olga", PASSWORD, Role.SITE_OPERATOR)
    with TestClient(create_app(engine)) as client:
        yield client
    engine.dispose()


def test_the_api_answers_429_with_retry_after_even_for_the_right_password(app):
    for _ in range(5):
        wrong = app.post("/auth/token", data={"username": "nadia", "password": "guess guess"})
        assert wrong.status_code == 401
    refused = app.post("/auth/token", data={"username": "nadia", "password": PASSWORD})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins" in refused.json()["detail"]
    olga = app.post("/auth/token", data={"username": "olga", "password": PASSWORD})
    assert olga.status_code == 200, "another person at the same address still signs in"


def test_the_dashboard_form_shows_the_refusal_and_sets_no_cookie(app):
    form = {"username": "olga", "password": "guess guess", "next": "/ui/"}
    for _ in range(5):
        assert app.post("/ui/sign-in", data=form, follow_redirects=False).status_code == 401
    form["password"] = PASSWORD
    refused = app.post("/ui/sign-in", data=form, follow_redirects=False)
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert "hafen_session" not in refused.cookies
    assert int(refused.headers["Retry-After"]) > 0
