"""The README's run command on a bare machine: the whole journey against the demo upstream.

``scripts/run`` runs in a copy of the project with no DATABASE_URL, REDIS_URL or
ZENZEFI_TARGET_URL (SQLite, the database cache, the file broker, the fake
Zenzefi as demo upstream). A new user registers, tops up with the mock
provider, buys a 1 h token and opens Zenzefi; with the demo upstream stopped,
a fresh token opens onto the Russian error page and stays ready.
"""

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest
from playwright.sync_api import expect

from tests.servers import ROOT, free_port, wait_port

pytestmark = pytest.mark.e2e

UNSET = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "ZENZEFI_TARGET_URL", "ENV_FILE", "SECRET_KEY", "DEBUG")


def _copy_project(target) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory):
    """``scripts/run`` in a copy of the project: (portal URL, demo port, project dir)."""
    project = tmp_path_factory.mktemp("fresh-install")
    _copy_project(project)
    port, demo_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {*UNSET, "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(PORT=str(port), ZENZEFI_DEMO_PORT=str(demo_port))
    log = (project / "run.log").open("w")
    process = subprocess.Popen(
        ["scripts/run"], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_port(port, timeout=180)
        yield f"http://127.0.0.1:{port}", demo_port, project
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _token_row(project, token_id: str) -> tuple:
    with sqlite3.connect(project / "var" / "db.sqlite3") as db:
        return db.execute(
            "SELECT activated_at, revoked_at FROM access_accesstoken WHERE replace(id, '-', '') = ?",
            (token_id.replace("-", ""),),
        ).fetchone()


def _buy_one_hour(page) -> str:
    page.get_by_test_id("nav-buy").click()
    page.get_by_test_id("buy-1-full").click()
    page.get_by_test_id("confirm-buy").click()
    expect(page).to_have_url(re.compile(r"/access/tokens/$"))
    card = page.get_by_test_id("token-card").first
    expect(card).to_have_attribute("data-status", "ready")
    return card.get_attribute("data-token-id")


def test_fresh_install_demo_journey_and_russian_error_page(_browser, fresh_install):
    portal, demo_port, project = fresh_install
    context = _browser.new_context(base_url=portal, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/", wait_until="load")
        expect(page.get_by_test_id("demo-notice")).to_contain_text("Demo mode: Zenzefi is simulated")

        page.get_by_role("link", name="Sign up").first.click()
        page.get_by_label("E-mail").fill("newcomer@example.com")
        page.get_by_label("Username").fill("newcomer")
        page.get_by_label("Full name").fill("New Comer")
        page.get_by_label("Password", exact=True).fill("Workshop-Pass-31")
        page.get_by_label("Repeat password").fill("Workshop-Pass-31")
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_test_id("nav-balance")).to_have_text("0.00 ZNC")

        page.get_by_test_id("nav-balance").click()
        page.get_by_text("100 ZNC").first.click()
        page.get_by_role("button", name="Continue to payment").click()
        page.get_by_role("button", name="Pay").click()
        expect(page.get_by_test_id("payment-status")).to_have_attribute("data-status", "succeeded")
        expect(page.get_by_test_id("nav-balance")).to_have_text("100.00 ZNC")

        first = _buy_one_hour(page)
        with context.expect_page() as opened:
            page.get_by_test_id("token-open").first.click()
        zenzefi = opened.value
        zenzefi.wait_for_load_state()
        expect(zenzefi).to_have_url(re.compile(r"/api/v1/proxy/$"))
        expect(zenzefi.get_by_role("heading", level=1)).to_have_text("Zenzefi certificate management")
        zenzefi.close()
        assert _token_row(project, first)[0] is not None  # the demo answered: the clock started

        # The demo upstream goes away (as a real Zenzefi behind a dropped VPN would).
        subprocess.run(["pkill", "-f", f"proxy.fake_zenzefi --host 127.0.0.1 --port {demo_port}"], check=True)
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and subprocess.run(
                ["pgrep", "-f", f"proxy.fake_zenzefi --host 127.0.0.1 --port {demo_port}"], capture_output=True
            ).returncode
            == 0
        ):
            time.sleep(0.1)

        page.get_by_role("button", name="RU").click()
        page.goto("/access/tokens/")
        page.get_by_test_id("nav-buy").click()
        page.get_by_test_id("buy-1-full").click()
        page.get_by_test_id("confirm-buy").click()
        expect(page).to_have_url(re.compile(r"/access/tokens/$"))
        fresh = page.locator('[data-testid="token-card"][data-status="ready"]').first
        fresh_id = fresh.get_attribute("data-token-id")
        assert fresh_id != first
        with context.expect_page() as opened:
            fresh.get_by_test_id("token-open").click()
        refused = opened.value
        refused.wait_for_load_state()

        error = refused.get_by_test_id("proxy-error")
        expect(error).to_have_attribute("data-status", "502")
        expect(refused.locator("html")).to_have_attribute("lang", "ru")
        expect(refused.get_by_role("heading", level=1)).to_have_text("Zenzefi сейчас недоступен")
        expect(refused.get_by_test_id("time-not-started")).to_contain_text("Время вашего токена не началось")
        refused.get_by_role("link", name="Мои токены").first.click()
        expect(refused).to_have_url(re.compile(r"/access/tokens/$"))
        card = refused.locator(f'[data-testid="token-card"][data-token-id="{fresh_id}"]')
        expect(card).to_have_attribute("data-status", "ready")
        assert _token_row(project, fresh_id) == (None, None)
    finally:
        context.close()
