"""Gifts over real SMTP: the recipient's address gets the claim link (never the token), once; the sender is told
of a claim, a decline and an expiry, once each, in the portal and by e-mail."""

import datetime as dt
import logging
import smtplib

import pytest
from django.urls import resolve, reverse

from access import gifts
from access import services as access
from access.models import Gift
from accounts.models import User
from events.models import Event
from events.registry import moment
from notifications import kinds, services, tasks
from notifications.models import EmailStatus, Notification, Preference
from tests.helpers import fund
from tests.notifications.conftest import html_part, text_part
from zenzefi.keys import fernet

pytestmark = pytest.mark.django_db

FRIEND = "friend@example.net"
SITE = "https://gate.example.test"


@pytest.fixture
def gift_mail_args(monkeypatch):
    """The arguments of every recipient mail task access.gifts queued, so a test can run that task again."""
    queued = []
    publish = tasks.send_gift_mail.apply_async

    def spy(args=None, **kwargs):
        queued.append(tuple(args))
        return publish(args=args, **kwargs)

    monkeypatch.setattr(tasks.send_gift_mail, "apply_async", spy)
    return queued


@pytest.fixture
def token(alice, django_capture_on_commit_callbacks):
    fund(alice, "100")  # stays above LOW_BALANCE_ZNC: no balance_low mail besides
    with django_capture_on_commit_callbacks(execute=True):
        return access.token_purchase(user=alice, duration_hours=24)


@pytest.fixture
def send(alice, token, smtp, django_capture_on_commit_callbacks):
    def offer(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return gifts.gift_send(user=alice, token_id=token.pk, **kwargs)

    return offer


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a service as an entry point would, and what its commit triggers (event consumers, mail tasks)."""

    def call(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(**kwargs)

    return call


def subject(message) -> str:
    return str(message["Subject"]).strip()


def assert_never_logged(caplog, *values: str) -> None:
    assert any("send_gift_mail" in record.getMessage() for record in caplog.records)  # the task's lines were seen
    for record in caplog.records:
        if record.name == "mail.log":
            continue  # the test's SMTP server, printing the mail it received
        seen = f"{record.getMessage()} {record.__dict__!r}"
        assert not [value for value in values if value in seen], record.getMessage()


def test_the_recipient_gets_the_claim_link_and_never_the_token(alice, token, send, smtp, gift_mail_args, caplog):
    caplog.set_level(logging.DEBUG)
    gift, code = send(recipient_email=FRIEND, message="Have fun <b>Bob</b> & co")

    [mail] = smtp.messages
    assert mail["To"] == FRIEND
    assert subject(mail) == "alice sent you Zenzefi access"
    assert mail["List-Unsubscribe"] is None
    link = f"{SITE}/gifts/claim/{code}"
    assert link == gifts.claim_url(code)
    match = resolve(link.removeprefix(SITE))
    assert (match.view_name, match.kwargs) == ("gifts:claim", {"code": code})
    text, page = text_part(mail).replace("\r\n", "\n"), html_part(mail)
    claim_by = kinds.when(moment(gift.expires_at))
    for part in (text, page):
        assert link in part
        assert "alice sent you access to Zenzefi as a gift: a token for 24 hours (Full access)." in part
        assert f"The link works once, until {claim_by}." in part
        assert "just ignore this e-mail" in part
        assert "You received this because alice entered your address" in part
    assert "alice wrote:\nHave fun <b>Bob</b> & co\n" in text
    assert "Have fun &lt;b&gt;Bob&lt;/b&gt; &amp; co" in page and "<b>Bob</b>" not in page
    token.refresh_from_db()
    raw = smtp.recorder.envelopes[0].original_content.decode()
    for part in (text, page, raw):
        assert token.secret not in part
        assert token.secret_prefix not in part
    gift.refresh_from_db()
    assert (gift.status, gift.emailed_at is not None) == ("pending", True)
    assert gift_mail_args == [(str(gift.pk), gift_mail_args[0][1])]
    sealed = gift_mail_args[0][1]
    assert code not in sealed  # sealed on its way through the broker
    assert gifts.mail_code_open(sealed) == code
    assert_never_logged(caplog, code, sealed)


def test_a_mail_task_run_again_sends_nothing_more(send, smtp, gift_mail_args):
    send(recipient_email=FRIEND)

    [args] = gift_mail_args
    assert tasks.send_gift_mail(*args) == "sent"
    assert tasks.send_gift_mail.apply(args=args).get() == "sent"

    assert len(smtp.to(FRIEND)) == 1
    assert len(smtp.messages) == 1


def test_no_recipient_address_no_mail(send, smtp, gift_mail_args):
    gift, _code = send(message="for you")

    assert gift_mail_args == []
    assert smtp.messages == []
    assert Gift.objects.get(pk=gift.pk).emailed_at is None


def test_a_tampered_or_unknown_task_sends_nothing(send, smtp, gift_mail_args):
    smtp.stop()
    gift, code = send(recipient_email=FRIEND)
    smtp.start()
    sealed = fernet("gift-mail").encrypt(code.encode()).decode()

    assert tasks.send_gift_mail(str(gift.pk), sealed[:-4] + "AAAA") == "invalid"
    assert tasks.send_gift_mail("not-a-uuid", sealed) == "missing"
    assert tasks.send_gift_mail("00000000-0000-0000-0000-000000000000", sealed) == "missing"
    assert smtp.messages == []


def test_the_sender_is_told_once_who_accepted_the_gift(alice, bob, token, send, smtp, run, as_user, gift_mail_args):
    gift, code = send(recipient_email=FRIEND)

    run(gifts.gift_claim, user=bob, code=code, accept=True)
    services.event_handle(Event.objects.get(type="gift.claimed"))  # handled again: nothing new

    row = Notification.objects.get(user=alice)
    assert (row.kind, row.key, row.email_status) == ("gift_claimed", f"gift_claimed:{gift.pk}", EmailStatus.SENT)
    assert (row.data["recipient"], row.data["recipient_id"], row.data["gift_id"]) == ("bob", str(bob.pk), str(gift.pk))
    [mail] = smtp.to("alice@example.com")
    assert subject(mail) == "Your gift was accepted · Zenzefi Gate"
    body = "bob accepted your gift: the token for 24 hours (Full access) is theirs now."
    assert body in text_part(mail) and body in html_part(mail)
    assert f"{SITE}/gifts/" in text_part(mail)
    assert mail["List-Unsubscribe"].strip("<> ").startswith(f"{SITE}/notifications/unsubscribe/")
    [item] = as_user(alice).get("/api/v1/notifications").json()["items"]
    assert (item["kind"], item["title"], item["body"]) == ("gift_claimed", "Your gift was accepted", body)
    assert smtp.to("bob@example.com") == []
    # The recipient's mail task, delivered late: the gift is no longer pending, nothing is sent.
    assert tasks.send_gift_mail(*gift_mail_args[0]) == "claimed"
    assert len(smtp.messages) == 2


def test_the_sender_is_told_of_a_decline_and_has_the_token_back(alice, bob, token, send, smtp, run):
    gift, code = send()

    run(gifts.gift_claim, user=bob, code=code, accept=False)

    row = Notification.objects.get(user=alice)
    assert (row.kind, row.key, row.data["recipient"]) == ("gift_declined", f"gift_declined:{gift.pk}", "bob")
    [mail] = smtp.messages
    assert mail["To"] == "alice@example.com"
    assert subject(mail) == "Your gift was declined: the token is yours again · Zenzefi Gate"
    assert "bob declined your gift, a token for 24 hours (Full access)." in text_part(mail)
    assert SITE + reverse("access:token", args=[token.pk]) in text_part(mail)
    token.refresh_from_db()
    assert token.user_id == alice.pk


def test_an_expired_gift_is_told_to_the_sender_once(alice, token, send, smtp, run):
    gift, _code = send(recipient_email=FRIEND)
    later = gift.expires_at + dt.timedelta(minutes=1)

    first = run(gifts.gifts_expire, now=later)
    second = run(gifts.gifts_expire, now=later)
    services.event_handle(Event.objects.get(type="gift.expired"))

    assert (first, second) == (1, 0)
    row = Notification.objects.get(user=alice)
    assert (row.kind, row.key, row.email_status) == ("gift_expired", f"gift_expired:{gift.pk}", EmailStatus.SENT)
    [mail] = smtp.to("alice@example.com")
    assert subject(mail) == "Your gift was not claimed in time: the token is yours again · Zenzefi Gate"
    assert (
        f"Nobody claimed your gift, a token for 24 hours (Full access), by {kinds.when(moment(gift.expires_at))}."
        in text_part(mail)
    )
    assert SITE + reverse("access:token", args=[token.pk]) in text_part(mail)
    assert len(smtp.messages) == 2  # the recipient's link, then this


def test_cancelling_a_gift_tells_nobody(alice, send, smtp, run):
    gift, _code = send()

    run(gifts.gift_cancel, user=alice, gift_id=gift.pk)

    assert Event.objects.filter(type="gift.cancelled").count() == 1
    assert not Notification.objects.exists()
    assert smtp.messages == []


def test_a_sender_who_turned_a_gift_kind_off_is_not_mailed_but_still_told(alice, send, smtp, run):
    Preference.objects.create(user=alice, kind="gift_expired", email=False)
    gift, _code = send()

    run(gifts.gifts_expire, now=gift.expires_at)

    assert Notification.objects.get(user=alice).email_status == EmailStatus.OPTED_OUT
    assert smtp.messages == []


def test_a_russian_sender_sends_a_russian_mail_and_is_told_in_russian(alice, bob, send, smtp, run):
    User.objects.filter(pk=alice.pk).update(language="ru")

    _gift, code = send(recipient_email=FRIEND, message="Привет!")
    run(gifts.gift_claim, user=bob, code=code, accept=True)

    [mail] = smtp.to(FRIEND)
    assert subject(mail) == "alice дарит вам доступ к Zenzefi"
    assert "alice дарит вам доступ к Zenzefi: токен на 24 часа (Полный доступ)." in text_part(mail)
    assert "alice пишет:\r\nПривет!" in text_part(mail)
    assert "просто проигнорируйте это письмо" in text_part(mail)
    assert '<html lang="ru">' in html_part(mail)
    assert gifts.claim_url(code) in html_part(mail)
    [told] = smtp.to("alice@example.com")
    assert subject(told) == "Ваш подарок принят · Zenzefi Gate"
    assert "Пользователь bob принял ваш подарок: токен на 24 часа (Полный доступ) теперь принадлежит ему." in text_part(
        told
    )


def test_smtp_down_leaves_the_gift_sent_and_the_retried_task_mails_it(alice, token, send, smtp, gift_mail_args, caplog):
    caplog.set_level(logging.DEBUG)
    smtp.stop()

    gift, code = send(recipient_email=FRIEND)  # every retry refused

    gift.refresh_from_db()
    token.refresh_from_db()
    assert (gift.status, gift.emailed_at, token.user_id) == ("pending", None, alice.pk)
    assert gifts.gift_by_code(code).pk == gift.pk
    assert smtp.recorder.envelopes == []

    smtp.start()
    [args] = gift_mail_args
    assert tasks.send_gift_mail.apply(args=args).get() == "sent"

    [mail] = smtp.to(FRIEND)
    assert gifts.claim_url(code) in text_part(mail)
    gift.refresh_from_db()
    assert gift.emailed_at is not None
    assert tasks.send_gift_mail(*args) == "sent"
    assert len(smtp.messages) == 1
    assert any("retry" in record.getMessage() for record in caplog.records)
    assert_never_logged(caplog, code, args[1])


def test_the_gift_mail_task_retries_smtp_errors_like_the_other_mails():
    assert tasks.send_gift_mail.autoretry_for == (smtplib.SMTPException, OSError)
    assert tasks.send_gift_mail.max_retries == tasks.send_email.max_retries == 8
    assert tasks.send_gift_mail.retry_backoff == tasks.send_email.retry_backoff


def test_the_queued_message_and_its_retries_show_the_gift_id_only(monkeypatch):
    """What a worker logs on receiving the task is the message's argsrepr, written by the publisher."""
    from zenzefi.celery import app as celery_app

    published = []
    monkeypatch.setattr(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(
        celery_app.amqp, "send_task_message", lambda producer, name, message, **kw: published.append(message)
    )
    args = ("0b7a6f3e-1111-4222-8333-944445555666", "gAAAA-sealed-code")

    tasks.send_gift_mail.apply_async(args=args)
    tasks.send_gift_mail.signature_from_request(tasks.send_gift_mail.request, args, {}).apply_async()

    assert [message.headers["argsrepr"] for message in published] == [repr([args[0], "<sealed>"])] * 2
    assert all("sealed-code" not in repr(message.headers) for message in published)
