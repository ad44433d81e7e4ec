"""The beat scan: token_expiring and renewal_upcoming, each sent once, inside its notice window only."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from access import services as access
from access.models import AccessToken
from accounts.models import User
from notifications import services
from notifications.models import Notification
from tests.helpers import fund
from tests.notifications.conftest import text_part

pytestmark = pytest.mark.django_db


def running(user, hours: int, *, left: dt.timedelta, auto_renew: bool = False) -> AccessToken:
    """A token activated long enough ago that ``left`` of its time remains."""
    token = access.token_purchase(user=user, duration_hours=hours)
    with time_machine.travel(dt.datetime.now(dt.UTC) - (dt.timedelta(hours=hours) - left)):
        access.token_activate(token_id=token.pk)
    AccessToken.objects.filter(pk=token.pk).update(auto_renew=auto_renew)
    token.refresh_from_db()
    return token


def scan(capture) -> dict:
    with capture(execute=True):
        return services.tokens_scan()


def test_expiring_tokens_are_told_once_by_their_lead_time(alice, smtp, django_capture_on_commit_callbacks):
    fund(alice, "1000")
    day = running(alice, 24, left=dt.timedelta(hours=2, minutes=50))
    half_day_early = running(alice, 12, left=dt.timedelta(hours=3, minutes=10))
    week = running(alice, 168, left=dt.timedelta(hours=23))
    week_early = running(alice, 168, left=dt.timedelta(hours=25))
    month = running(alice, 720, left=dt.timedelta(hours=1))
    hour = running(alice, 1, left=dt.timedelta(minutes=10))
    unused = access.token_purchase(user=alice, duration_hours=24)
    revoked = running(alice, 24, left=dt.timedelta(hours=1))
    access.token_revoke(user=alice, token_id=revoked.pk)

    first = scan(django_capture_on_commit_callbacks)
    second = scan(django_capture_on_commit_callbacks)

    assert first == {"token_expiring": 3, "renewal_upcoming": 0}
    assert second == {"token_expiring": 0, "renewal_upcoming": 0}
    told = {row.data["token_id"]: row for row in Notification.objects.filter(kind="token_expiring")}
    assert set(told) == {str(day.pk), str(week.pk), str(month.pk)}
    for token in (half_day_early, week_early, hour, unused, revoked):
        assert str(token.pk) not in told
    expires = day.expires_at.astimezone(dt.UTC)
    assert told[str(day.pk)].key == f"token_expiring:{day.pk}:{expires.isoformat().replace('+00:00', 'Z')}"
    mails = smtp.to("alice@example.com")
    assert len(mails) == 3
    body = " ".join(text_part(next(m for m in mails if day.secret_prefix in text_part(m))).split())
    assert f"Token {day.secret_prefix}… expires at {expires:%Y-%m-%d %H:%M} UTC." in body


def test_a_token_that_will_auto_renew_is_not_told_it_expires_unless_the_balance_falls_short(
    alice, smtp, django_capture_on_commit_callbacks
):
    fund(alice, "100")
    covered = running(alice, 24, left=dt.timedelta(hours=2), auto_renew=True)  # balance 82 >= 18
    User.objects.filter(pk=alice.pk).update(renew_min_balance=Decimal("70"))  # 82 - 18 = 64 < 70: it will not renew

    assert scan(django_capture_on_commit_callbacks)["token_expiring"] == 1

    User.objects.filter(pk=alice.pk).update(renew_min_balance=Decimal("0"))
    other = running(alice, 12, left=dt.timedelta(hours=2), auto_renew=True)  # balance 72, covered
    assert scan(django_capture_on_commit_callbacks)["token_expiring"] == 0
    User.objects.filter(pk=alice.pk).update(auto_renew_enabled=False)  # the master switch is off
    assert scan(django_capture_on_commit_callbacks)["token_expiring"] == 1
    assert set(Notification.objects.values_list("data__token_id", flat=True)) == {str(covered.pk), str(other.pk)}


def test_renewal_upcoming_for_auto_renewing_month_tokens_with_the_price(
    alice, bob, smtp, django_capture_on_commit_callbacks
):
    fund(alice, "700")
    fund(bob, "300")
    User.objects.filter(pk=alice.pk).update(renew_min_balance=Decimal("20"), language="ru")
    soon = running(alice, 720, left=dt.timedelta(hours=71), auto_renew=True)
    later = running(alice, 720, left=dt.timedelta(hours=73), auto_renew=True)
    manual = running(bob, 720, left=dt.timedelta(hours=70))

    first = scan(django_capture_on_commit_callbacks)
    second = scan(django_capture_on_commit_callbacks)

    assert (first["renewal_upcoming"], second["renewal_upcoming"]) == (1, 0)
    row = Notification.objects.get(kind="renewal_upcoming")
    assert (row.user, row.data["token_id"], row.data["price"], row.data["needed"]) == (
        alice,
        str(soon.pk),
        "300.00",
        "320.00",
    )
    assert str(later.pk) not in row.key and str(manual.pk) not in row.key
    [mail] = smtp.to("alice@example.com")
    assert f"Токен {soon.secret_prefix}… будет автоматически продлён за 300.00 ZNC" in " ".join(text_part(mail).split())


def test_a_renewed_token_gets_a_new_notice_for_its_new_expiry(alice, smtp, django_capture_on_commit_callbacks):
    fund(alice, "100")
    token = running(alice, 24, left=dt.timedelta(hours=1))
    scan(django_capture_on_commit_callbacks)
    # What a renewal does to the token: the same token, a later expiry.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=24)):
        AccessToken.objects.filter(pk=token.pk).update(activated_at=token.activated_at + dt.timedelta(hours=24))
        if any(f.name == "expires_at" for f in AccessToken._meta.concrete_fields):
            AccessToken.objects.filter(pk=token.pk).update(expires_at=token.expires_at + dt.timedelta(hours=24))
        assert scan(django_capture_on_commit_callbacks)["token_expiring"] == 1

    assert Notification.objects.filter(kind="token_expiring").count() == 2
