"""Auto-renewal in the browser: switch it on, see the next renewal; the task renews; the bell counts the
notification, and the history shows the renewal."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import formats, timezone
from playwright.sync_api import expect

from access import services
from access.models import AccessToken
from access.tasks import renew_tokens
from accounts.models import User
from tests.e2e.test_access_journey import fund, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tasks_in_process():
    """Celery tasks published after a commit run at once here (the notifications consumer among them)."""
    from zenzefi.celery import app as celery_app

    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = eager


def test_turn_auto_renewal_on_and_see_the_renewal_in_the_history(page, tasks_in_process):
    user = UserFactory(email="renew@example.com", username="renewer")
    fund(user, "30")
    token = services.token_purchase(user=user, duration_hours=12)
    services.token_activate(token_id=token.pk)
    token.refresh_from_db()
    first_expiry = token.expires_at

    log_in(page, "renewer")
    page.goto("/access/tokens/")
    card = page.locator(f'[data-testid="token-card"][data-token-id="{token.pk}"]')
    switch = card.get_by_test_id("renew-switch")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()

    expect(page.get_by_text("Auto-renewal is on for this token.")).to_be_visible()
    expect(card.get_by_test_id("renew-switch")).to_have_attribute("aria-checked", "true")
    moment = formats.date_format(timezone.localtime(first_expiry - dt.timedelta(hours=1)), "d.m H:i")
    expect(card.get_by_test_id("next-renewal")).to_have_text(f"· next renewal {moment} for 10.00 ZNC")
    assert AccessToken.objects.get(pk=token.pk).auto_renew is True

    bell = page.get_by_test_id("nav-bell")
    unread_before = int(bell.get_attribute("data-unread"))
    with time_machine.travel(first_expiry - dt.timedelta(minutes=30)):
        assert renew_tokens() == 1

    page.goto("/access/tokens/")
    expect(page.get_by_test_id("nav-bell")).to_have_attribute("data-unread", str(unread_before + 1))
    expect(page.get_by_test_id("nav-bell-count")).to_have_text(str(unread_before + 1))
    page.get_by_test_id("nav-bell").click()
    expect(page.get_by_text("Your access token was renewed")).to_be_visible()

    page.goto("/wallet/")
    expect(page.get_by_text("Token renewal: 12h, period 2")).to_be_visible()
    page.goto(f"/access/tokens/{token.pk}/")
    expect(page.get_by_test_id("token-renewals")).to_have_text("1")
    later = formats.date_format(timezone.localtime(first_expiry + dt.timedelta(hours=11)), "d.m H:i")
    expect(page.get_by_test_id("next-renewal")).to_have_text(f"· next renewal {later} for 10.00 ZNC")
    token.refresh_from_db()
    assert token.expires_at == first_expiry + dt.timedelta(hours=12)
    assert User.objects.get(pk=user.pk).balance == Decimal("10.00")
