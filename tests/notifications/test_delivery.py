"""Facts from events reach the user once: a portal row and one e-mail in their language, over real SMTP."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from access import services as access
from accounts.models import User
from events import services as events
from events.models import Event
from notifications import services, tasks
from notifications.models import EmailQuota, EmailStatus, Notification, Preference
from tests.helpers import balance, fund
from tests.notifications.conftest import html_part, text_part
from wallet.services import balance_change

pytestmark = pytest.mark.django_db


def buy(user, hours: int, capture) -> None:
    with capture(execute=True):
        access.token_purchase(user=user, duration_hours=hours)


def credit(user, amount: str, kind: str, capture) -> None:
    with capture(execute=True):
        balance_change(user_id=user.pk, amount=Decimal(amount), kind=kind, description=f"Test {kind}")


def subject(message) -> str:
    return str(message["Subject"]).strip()


def unsubscribe_link(message) -> str:
    return str(message["List-Unsubscribe"]).strip().strip("<>")


def test_balance_low_is_sent_once_per_crossing_and_rearmed_above_the_line(
    alice, smtp, django_capture_on_commit_callbacks
):
    fund(alice, "20")
    buy(alice, 12, django_capture_on_commit_callbacks)  # 20 -> 10: not below 10
    assert not Notification.objects.exists()

    buy(alice, 1, django_capture_on_commit_callbacks)  # 10 -> 9: crosses
    buy(alice, 1, django_capture_on_commit_callbacks)  # 9 -> 8: still below, nothing new
    credit(alice, "5", "deposit", django_capture_on_commit_callbacks)  # 13: re-armed
    buy(alice, 12, django_capture_on_commit_callbacks)  # 13 -> 3: crosses again

    rows = list(Notification.objects.filter(user=alice).order_by("created_at", "id"))
    assert [(r.kind, r.data["balance_after"], r.email_status) for r in rows] == [
        ("balance_low", "9.00", "sent"),
        ("balance_low", "3.00", "sent"),
    ]
    crossing = alice.transactions.get(balance_after=Decimal("9.00"))
    assert rows[0].key == f"balance_low:{crossing.pk}"
    assert balance(alice) == Decimal("3.00")
    mails = smtp.to("alice@example.com")
    assert [subject(m) for m in mails] == ["Your balance is low · Zenzefi Gate"] * 2
    first = mails[0]
    assert "Your balance is 9.00 ZNC, below 10.00 ZNC." in text_part(first)
    assert "https://gate.example.test/wallet/" in text_part(first)
    assert "Your balance is 9.00 ZNC, below 10.00 ZNC." in html_part(first)
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = unsubscribe_link(first)
    assert link.startswith("https://gate.example.test/notifications/unsubscribe/")
    assert link in text_part(first) and link in html_part(first)


def test_threshold_comes_from_settings(alice, smtp, settings, django_capture_on_commit_callbacks):
    settings.LOW_BALANCE_ZNC = Decimal("50")
    fund(alice, "60")

    buy(alice, 12, django_capture_on_commit_callbacks)  # 60 -> 50: not below
    buy(alice, 1, django_capture_on_commit_callbacks)  # 50 -> 49

    assert list(Notification.objects.values_list("data__threshold", "data__balance_after")) == [("50.00", "49.00")]


def test_a_russian_user_gets_russian_mail(alice, smtp, django_capture_on_commit_callbacks):
    User.objects.filter(pk=alice.pk).update(language="ru")

    credit(alice, "12.50", "referral_bonus", django_capture_on_commit_callbacks)

    [mail] = smtp.to("alice@example.com")
    assert subject(mail) == "Вы получили реферальный бонус · Zenzefi Gate"
    assert "Здравствуйте, alice!" in text_part(mail)
    assert "На ваш баланс зачислен реферальный бонус 12.50 ZNC." in text_part(mail)
    assert "Отписаться от этих писем" in html_part(mail)
    assert '<html lang="ru">' in html_part(mail)
    # The stored row is language-free: the API reads it in English.
    row = Notification.objects.get()
    assert (row.kind, row.key) == (
        "referral_bonus",
        f"referral_bonus:{alice.transactions.get(kind='referral_bonus').pk}",
    )


def test_a_user_who_never_chose_a_language_gets_the_site_language(alice, bob, smtp, settings, record):
    settings.LANGUAGE_CODE = "ru"
    User.objects.filter(pk=bob.pk).update(language="en")

    for user in (alice, bob):
        record("webhook_endpoint.disabled", user, {"endpoint_id": "e1", "url": "https://h.example/", "reason": "x"})

    assert subject(smtp.to("alice@example.com")[0]).startswith("Эндпоинт вебхука отключён")
    assert subject(smtp.to("bob@example.com")[0]) == "A webhook endpoint was disabled · Zenzefi Gate"


def test_deposits_refunds_and_adjustments_notify_nothing(alice, smtp, django_capture_on_commit_callbacks):
    for kind in ("deposit", "refund", "adjustment"):
        credit(alice, "30", kind, django_capture_on_commit_callbacks)

    assert not Notification.objects.exists()
    assert smtp.messages == []


def test_token_renewed_is_notified_once_however_often_the_event_is_handled(alice, smtp, record):
    fund(alice, "400")  # stays above LOW_BALANCE_ZNC: no balance_low mail besides
    token = access.token_purchase(user=alice, duration_hours=720)
    data = {"token_id": str(token.pk), "period": 2, "price": "300.00", "expires_at": "2027-01-02T10:00:00Z"}

    event = record("token.renewed", alice, data)
    tasks.consume_event(event.pk)
    services.event_handle(Event.objects.get(pk=event.pk))  # even the handler itself, run again

    row = Notification.objects.get(kind="token_renewed")
    assert row.key == f"token_renewed:{token.pk}:2"
    [mail] = smtp.to("alice@example.com")
    assert subject(mail) == "Your access token was renewed · Zenzefi Gate"
    assert f"Token {token.secret_prefix}… was renewed for 300.00 ZNC and now runs until 2027-01-02 10:00 UTC." in (
        text_part(mail)
    )
    assert f"https://gate.example.test/access/tokens/{token.pk}/" in text_part(mail)


def test_renewal_failed_once_per_episode_says_how_much_and_by_when(alice, smtp, record):
    fund(alice, "400")  # stays above LOW_BALANCE_ZNC: no balance_low mail besides
    token = access.token_purchase(user=alice, duration_hours=720)
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(hours=700)):
        access.token_activate(token_id=token.pk)
    token.refresh_from_db()
    failed = {"token_id": str(token.pk), "reason": "insufficient_balance", "required": "305.00", "available": "120.50"}

    record("token.renewal_failed", alice, failed)
    record("token.renewal_failed", alice, {**failed, "available": "121.00"})  # the same episode, tried again

    row = Notification.objects.get(kind="renewal_failed")
    deadline = token.expires_at.astimezone(dt.UTC)
    assert row.data["top_up"] == "184.50"
    [mail] = smtp.to("alice@example.com")
    assert subject(mail) == "Auto-renewal failed: top up your balance · Zenzefi Gate"
    assert (
        f"it needs 305.00 ZNC and your balance is 120.50 ZNC. Top up at least 184.50 ZNC before "
        f"{deadline:%Y-%m-%d %H:%M} UTC" in " ".join(text_part(mail).split())
    )


def test_renewal_failed_for_a_duration_no_longer_on_sale_says_to_buy_anew(alice, smtp, record):
    data = {"token_id": "00000000-0000-0000-0000-000000000001", "reason": "duration_not_on_sale", "required": None}

    record("token.renewal_failed", alice, {**data, "available": "50.00"})

    row = Notification.objects.get()
    assert (row.data["required"], row.data["top_up"]) == (None, None)
    [mail] = smtp.to("alice@example.com")
    assert subject(mail) == "Auto-renewal failed · Zenzefi Gate"
    assert "its duration is no longer on sale. Buy a new token before" in " ".join(text_part(mail).split())


def test_a_disabled_webhook_endpoint_is_mailed_to_its_owner(
    alice, bob, smtp, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_ALLOW_HTTP = settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint, _secret = events.endpoint_create(owner=alice, url="http://127.0.0.1:9/hook", events=["*"])

    with django_capture_on_commit_callbacks(execute=True):
        events.endpoint_admin_disable(endpoint_id=endpoint.pk)
    with django_capture_on_commit_callbacks(execute=True):
        events.endpoint_admin_disable(endpoint_id=endpoint.pk)  # already off: no new fact

    row = Notification.objects.get()
    assert (row.user, row.kind, row.data["url"]) == (alice, "webhook_endpoint_disabled", "http://127.0.0.1:9/hook")
    [mail] = smtp.messages
    assert mail["To"] == "alice@example.com"
    assert "Your webhook endpoint http://127.0.0.1:9/hook was disabled (disabled by an administrator)." in (
        text_part(mail)
    )


def test_the_daily_cap_holds_but_renewal_failed_is_always_sent(alice, smtp, settings, record):
    settings.NOTIFY_EMAIL_PER_DAY = 2
    for n in range(3):
        record(
            "webhook_endpoint.disabled", alice, {"endpoint_id": f"e{n}", "url": f"https://h{n}.example/", "reason": "x"}
        )
    record(
        "token.renewal_failed",
        alice,
        {"token_id": "00000000-0000-0000-0000-000000000000", "reason": "r", "required": "10", "available": "1"},
    )

    statuses = list(Notification.objects.order_by("created_at", "id").values_list("kind", "email_status"))
    assert statuses == [
        ("webhook_endpoint_disabled", "sent"),
        ("webhook_endpoint_disabled", "sent"),
        ("webhook_endpoint_disabled", "capped"),
        ("renewal_failed", "sent"),
    ]
    assert len(smtp.to("alice@example.com")) == 3
    assert EmailQuota.objects.get(user=alice).sent == 2
    # The capped one is still in the portal.
    assert Notification.objects.filter(user=alice).count() == 4


def test_the_cap_counts_per_day(alice, smtp, settings, record):
    settings.NOTIFY_EMAIL_PER_DAY = 1
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)):
        record("webhook_endpoint.disabled", alice, {"endpoint_id": "a", "url": "https://a.example/", "reason": "x"})
    record("webhook_endpoint.disabled", alice, {"endpoint_id": "b", "url": "https://b.example/", "reason": "x"})

    assert list(Notification.objects.values_list("email_status", flat=True)) == ["sent", "sent"]
    tasks.scan()
    assert EmailQuota.objects.count() == 2  # yesterday's count stays a day longer
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)):
        tasks.scan()
    assert not EmailQuota.objects.exists()  # old counts are pruned


def test_nothing_is_mailed_to_a_user_who_opted_out(alice, smtp, record):
    Preference.objects.create(user=alice, kind="webhook_endpoint_disabled", email=False)

    record("webhook_endpoint.disabled", alice, {"endpoint_id": "a", "url": "https://a.example/", "reason": "x"})
    record("token.renewed", alice, {"token_id": "t", "period": 1, "price": "1.00", "expires_at": None})

    assert dict(Notification.objects.values_list("kind", "email_status")) == {
        "webhook_endpoint_disabled": "opted_out",
        "token_renewed": "sent",
    }
    assert [subject(m) for m in smtp.messages] == ["Your access token was renewed · Zenzefi Gate"]


def test_an_inactive_user_is_not_mailed(alice, smtp, record):
    User.objects.filter(pk=alice.pk).update(is_active=False)

    record("webhook_endpoint.disabled", alice, {"endpoint_id": "a", "url": "https://a.example/", "reason": "x"})

    assert Notification.objects.get().email_status == EmailStatus.NO_ADDRESS
    assert smtp.messages == []


def test_smtp_down_fails_no_purchase_and_the_mail_goes_out_once_it_is_back(
    alice, smtp, django_capture_on_commit_callbacks
):
    fund(alice, "10.50")
    smtp.stop()

    buy(alice, 1, django_capture_on_commit_callbacks)  # 10.50 -> 9.50, every retry refused

    assert balance(alice) == Decimal("9.50")
    assert alice.access_tokens.count() == 1
    row = Notification.objects.get()
    assert (row.kind, row.email_status, row.emailed_at) == ("balance_low", "sending", None)
    assert smtp.recorder.envelopes == []

    smtp.start()
    later = dt.datetime.now(dt.UTC) + services.EMAIL_RETRY_AFTER + dt.timedelta(minutes=1)
    with time_machine.travel(later):
        first = tasks.scan()
        second = tasks.scan()

    assert (first["emails"], second["emails"]) == (1, 0)
    row.refresh_from_db()
    assert row.email_status == "sent" and row.emailed_at is not None
    assert [subject(m) for m in smtp.to("alice@example.com")] == ["Your balance is low · Zenzefi Gate"]
    assert tasks.send_email(row.pk) == "sent"  # a late duplicate task sends nothing more
    assert len(smtp.messages) == 1


def test_the_mail_task_retries_smtp_errors():
    assert tasks.send_email.autoretry_for == (__import__("smtplib").SMTPException, OSError)
    assert tasks.send_email.max_retries == 8
    assert tasks.send_email.retry_backoff


def test_a_mail_whose_task_was_lost_is_queued_by_the_scan(alice, smtp, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        services.notification_create(user_id=alice.pk, kind="balance_low", key="balance_low:x", data={})

    assert Notification.objects.get().email_status == "pending"
    assert tasks.scan()["emails"] == 0  # its task may still be on its way
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)):
        assert tasks.scan()["emails"] == 1
    assert Notification.objects.get().email_status == "sent"
    assert len(smtp.messages) == 1


def test_an_event_whose_task_was_lost_is_handled_by_the_scan(alice, smtp, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        from django.db import transaction

        with transaction.atomic():
            events.event_record(
                type="webhook_endpoint.disabled", user=alice, data={"endpoint_id": "a", "url": "u", "reason": "r"}
            )

    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)):
        with django_capture_on_commit_callbacks(execute=True):
            first = tasks.scan()
        second = tasks.scan()

    assert (first["events"], second["events"]) == (1, 0)
    assert Notification.objects.filter(kind="webhook_endpoint_disabled").count() == 1
    assert len(smtp.messages) == 1


def test_the_one_click_unsubscribe_turns_the_kind_off_without_login_or_csrf(alice, smtp, record):
    record("webhook_endpoint.disabled", alice, {"endpoint_id": "a", "url": "https://a.example/", "reason": "x"})
    link = unsubscribe_link(smtp.messages[0])
    path = link.removeprefix("https://gate.example.test")
    client = Client(enforce_csrf_checks=True)

    response = client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert Preference.objects.get(user=alice, kind="webhook_endpoint_disabled").email is False
    record("webhook_endpoint.disabled", alice, {"endpoint_id": "b", "url": "https://b.example/", "reason": "x"})
    assert len(smtp.messages) == 1
    assert Notification.objects.filter(user=alice).count() == 2  # still shown in the portal


def test_the_real_renewal_task_notifies_renewed_and_failed_once(alice, bob, smtp, django_capture_on_commit_callbacks):
    from access.models import AccessToken
    from access.renewal import tokens_renew

    fund(alice, "100")
    fund(bob, "18")
    tokens = {}
    for user in (alice, bob):
        token = access.token_purchase(user=user, duration_hours=24)
        with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(hours=23, minutes=30)):
            access.token_activate(token_id=token.pk)
        AccessToken.objects.filter(pk=token.pk).update(auto_renew=True)
        tokens[user.username] = token

    for _run in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            tokens_renew()

    assert list(Notification.objects.filter(user=alice).values_list("kind", flat=True)) == ["token_renewed"]
    # Bob's purchase took his balance to 0.00: that is a balance_low of its own.
    assert set(Notification.objects.filter(user=bob).values_list("kind", flat=True)) == {
        "balance_low",
        "renewal_failed",
    }
    assert Notification.objects.get(user=bob, kind="renewal_failed").data["top_up"] == "18.00"
    assert [subject(m) for m in smtp.to("alice@example.com")] == ["Your access token was renewed · Zenzefi Gate"]
    assert sorted(subject(m) for m in smtp.to("bob@example.com")) == [
        "Auto-renewal failed: top up your balance · Zenzefi Gate",
        "Your balance is low · Zenzefi Gate",
    ]
