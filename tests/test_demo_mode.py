"""Demo mode: with no ZENZEFI_TARGET_URL, scripts/run proxies to the fake Zenzefi and the portal says so."""

import subprocess

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from access import services as access
from tests.helpers import fund
from tests.servers import ROOT

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
NOTICE = 'data-testid="demo-notice"'


@pytest.mark.django_db
@pytest.mark.parametrize("demo", [True, False])
def test_home_page_says_zenzefi_is_simulated_in_demo_mode_only(settings, demo):
    settings.ZENZEFI_DEMO = demo

    html = Client().get("/", HTTP_ACCEPT=HTML).content.decode()

    assert (NOTICE in html) is demo
    assert ("Demo mode: Zenzefi is simulated" in html) is demo


@pytest.mark.django_db
def test_the_notice_is_translated(settings):
    settings.ZENZEFI_DEMO = True

    html = Client().get("/", HTTP_ACCEPT=HTML, HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    assert "Демо-режим: Zenzefi имитируется" in html


@pytest.mark.django_db
@pytest.mark.parametrize("demo", [True, False])
def test_token_pages_show_the_notice_next_to_open_zenzefi(settings, alice, demo):
    settings.ZENZEFI_DEMO = demo
    fund(alice, "5")
    token = access.token_purchase(user=alice, duration_hours=1)
    portal = Client()
    portal.force_login(alice)

    urls = [reverse("access:tokens"), reverse("access:token", args=[token.pk])]

    pages = [portal.get(url).content.decode() for url in urls]

    assert [("Open Zenzefi" in page, NOTICE in page) for page in pages] == [(True, demo), (True, demo)]


def test_the_fake_zenzefi_page_says_it_is_simulated(zenzefi_url):
    page = httpx.get(zenzefi_url + "/", headers={"Accept": HTML})

    assert page.headers["content-type"].startswith("text/html")
    assert "Zenzefi certificate management" in page.text
    assert 'id="simulated"' in page.text


def configured_target(env_file, env=None) -> str:
    """scripts/lib.sh's configured_target, as scripts/run calls it to decide on demo mode."""
    clean = {"PATH": "/usr/bin:/bin", **(env or {})}
    done = subprocess.run(
        ["bash", "-c", '. scripts/lib.sh; configured_target "$0"', str(env_file)],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_run_script_starts_the_demo_upstream_only_without_a_target(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=x\nDEBUG=false\n")
    configured = tmp_path / "configured.env"
    configured.write_text('SECRET_KEY=x\nZENZEFI_TARGET_URL="https://192.168.1.20:8443"\n')

    assert subprocess.run(["bash", "-n", "scripts/run"], cwd=ROOT).returncode == 0
    assert configured_target(tmp_path / "missing.env") == ""  # demo upstream
    assert configured_target(env_file) == ""  # demo upstream
    assert configured_target(configured) == "https://192.168.1.20:8443"
    assert configured_target(env_file, {"ZENZEFI_TARGET_URL": "https://zenzefi.lan"}) == "https://zenzefi.lan"
    script = (ROOT / "scripts" / "run").read_text()
    assert 'python -m proxy.fake_zenzefi --host 127.0.0.1 --port "$DEMO_PORT"' in script
    assert 'export ZENZEFI_TARGET_URL="http://127.0.0.1:$DEMO_PORT" ZENZEFI_DEMO=true' in script
