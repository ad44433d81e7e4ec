"""Locust load test: the reference's realistic mix of portal, API and proxy traffic.

Each simulated user, once at start: registers (POST /api/v1/auth/register), logs
in for a JWT (POST /api/v1/auth/login), tops up 20 ZNC
(POST /api/v1/currency/mock-purchase, needs ENABLE_MOCK_PAYMENTS=true on the
server) and buys a 1 h token (POST /api/v1/tokens/purchase); it keeps one
stable device id. Then, until the run ends, it picks weighted tasks: mostly
proxy traffic with that token and device (GET /api/v1/proxy/certificates/filter
and /echo), some /api/v1/proxy/status, balance and token-list reads, and now
and then another purchase, a top-up or a fresh login.

Locust is not a project requirement: install it in its own virtualenv (see
bench/README.md) and run it through ``bench/load_test.py``, which starts the
servers, or by hand against a running server that has ENABLE_MOCK_PAYMENTS=true
and a RATE_LIMIT_AUTH high enough for every simulated user coming from one IP:

    /tmp/locust-venv/bin/locust -f bench/locustfile.py --headless -u 50 -r 10 -t 60s \\
        --host http://127.0.0.1:8000 --only-summary

Every response is checked (status and, for the proxy, the body), so a wrong
answer counts as a failure, not only a transport error. With
``LOCUST_SUMMARY_JSON=<file>`` the final per-endpoint numbers (the ones the
summary prints) are also written there as JSON, for bench/load_test.py.
"""

import json
import os
import uuid
from pathlib import Path

from locust import HttpUser, between, events, task
from locust.exception import StopUser

API = "/api/v1"
PASSWORD = "Load-test-Passw0rd!"  # a throwaway account on a throwaway database
TOP_UP_ZNC = "20"


def _body(response):
    """The JSON body, or None when there is none (a failure is then reported by the caller)."""
    try:
        return response.json()
    except ValueError:
        return None


class PortalUser(HttpUser):
    """One workshop: a portal account, one token, one desktop client (device)."""

    # A desktop client loading a Zenzefi page fires requests in quick bursts.
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        tag = uuid.uuid4().hex
        self.email = f"lt-{tag}@example.com"
        self.username = f"lt_{tag[:16]}"
        self.device_id = f"locust-device-{tag}"
        self.jwt = ""
        self.token = ""

        with self.client.post(
            f"{API}/auth/register",
            json={"email": self.email, "username": self.username, "password": PASSWORD},
            name="register",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"register: HTTP {response.status_code} {response.text[:200]}")
                raise StopUser
        if not self._login():
            raise StopUser
        if not self._top_up():
            raise StopUser
        token = self._buy_token()
        if not token:
            raise StopUser
        self.token = token

    # --- helpers -------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.jwt}"}

    def _proxy_headers(self) -> dict[str, str]:
        return {"X-Access-Token": self.token, "X-Device-ID": self.device_id}

    def _login(self) -> bool:
        with self.client.post(
            f"{API}/auth/login",
            json={"email": self.email, "password": PASSWORD},
            name="login",
            catch_response=True,
        ) as response:
            body = _body(response)
            if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
                response.failure(f"login: HTTP {response.status_code} {response.text[:200]}")
                return False
            self.jwt = body["access_token"]
            return True

    def _top_up(self) -> bool:
        with self.client.post(
            f"{API}/currency/mock-purchase",
            json={"amount": TOP_UP_ZNC},
            headers=self._auth(),
            name="currency/mock-purchase",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"mock-purchase: HTTP {response.status_code} {response.text[:200]}")
                return False
            return True

    def _buy_token(self, *, top_up_on_402: bool = True) -> str | None:
        """Buy a 1 h token (1 ZNC); when the balance ran out (402, expected), top up and buy once more."""
        with self.client.post(
            f"{API}/tokens/purchase",
            json={"duration_hours": 1},
            headers=self._auth(),
            name="tokens/purchase",
            catch_response=True,
        ) as response:
            if response.status_code == 402 and top_up_on_402:
                response.success()
                return self._buy_token(top_up_on_402=False) if self._top_up() else None
            body = _body(response)
            if response.status_code != 201 or not isinstance(body, dict) or len(body.get("token") or "") != 64:
                response.failure(f"tokens/purchase: HTTP {response.status_code} {response.text[:200]}")
                return None
            return body["token"]

    # --- the mix (weights: proxy traffic dominates) -------------------------------------------

    @task(50)
    def proxy_certificates(self) -> None:
        with self.client.get(
            f"{API}/proxy/certificates/filter",
            headers=self._proxy_headers(),
            name="proxy/certificates/filter",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or '"certificates"' not in response.text:
                response.failure(f"proxy certificates: HTTP {response.status_code} {response.text[:200]}")

    @task(20)
    def proxy_echo(self) -> None:
        with self.client.get(
            f"{API}/proxy/echo",
            params={"q": "load"},
            headers=self._proxy_headers(),
            name="proxy/echo",
            catch_response=True,
        ) as response:
            seen = _body(response)
            if response.status_code != 200 or not isinstance(seen, dict):
                response.failure(f"proxy echo: HTTP {response.status_code} {response.text[:200]}")
                return
            forwarded = {name.lower() for name, _value in seen.get("headers", [])}
            if seen.get("path") != "/echo" or "x-access-token" in forwarded or "x-device-id" in forwarded:
                response.failure(f"proxy echo: unexpected upstream view {str(seen)[:200]}")

    @task(5)
    def proxy_status(self) -> None:
        with self.client.get(
            f"{API}/proxy/status",
            headers={"X-Access-Token": self.token},
            name="proxy/status",
            catch_response=True,
        ) as response:
            body = _body(response)
            if response.status_code != 200 or not isinstance(body, dict) or body.get("connected") is not True:
                response.failure(f"proxy status: HTTP {response.status_code} {response.text[:200]}")

    @task(4)
    def balance(self) -> None:
        with self.client.get(
            f"{API}/currency/balance", headers=self._auth(), name="currency/balance", catch_response=True
        ) as response:
            body = _body(response)
            if response.status_code != 200 or not isinstance(body, dict) or body.get("currency") != "ZNC":
                response.failure(f"balance: HTTP {response.status_code} {response.text[:200]}")

    @task(4)
    def my_tokens(self) -> None:
        with self.client.get(
            f"{API}/tokens/my-tokens", headers=self._auth(), name="tokens/my-tokens", catch_response=True
        ) as response:
            body = _body(response)
            if response.status_code != 200 or not isinstance(body, list) or not body:
                response.failure(f"my-tokens: HTTP {response.status_code} {response.text[:200]}")

    @task(2)
    def buy_token(self) -> None:
        self._buy_token()

    @task(1)
    def top_up(self) -> None:
        self._top_up()

    @task(1)
    def login_again(self) -> None:
        self._login()


@events.quitting.add_listener
def _save_summary(environment, **_kwargs) -> None:
    """Write the final statistics (as in Locust's printed summary) to $LOCUST_SUMMARY_JSON."""
    path = os.environ.get("LOCUST_SUMMARY_JSON")
    if not path or environment.stats is None:
        return
    entries = sorted(environment.stats.entries.values(), key=lambda e: (e.name, e.method or ""))
    rows = []
    for entry in [*entries, environment.stats.total]:
        rows.append(
            {
                "name": entry.name,
                "method": entry.method or "",
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                "median_ms": entry.median_response_time,
                "p95_ms": entry.get_response_time_percentile(0.95),
                "p99_ms": entry.get_response_time_percentile(0.99),
                "avg_ms": entry.avg_response_time,
                "max_ms": entry.max_response_time,
                "rps": entry.total_rps,
            }
        )
    Path(path).write_text(json.dumps(rows, indent=1))
