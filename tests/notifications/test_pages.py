"""Portal: the bell, the notifications page, read marks, the preferences on the profile, unsubscribe links and the
language switch that mails follow."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from notifications import services
from notifications.models import Notification, Preference
from tests.helpers import html

pytestmark = pytest.mark.django_db

LIST = "/notifications/"


def notify(user, n: int = 0, kind: str = "balance_low", **data) -> Notification:
    data = data or {"balance_after": "9.00", "threshold": "10.00"}
    return Notification.objects.create(user=user, kind=kind, key=f"{kind}:{n}", data=data)


def test_the_bell_shows_the_unread_count(portal, alice, bob):
    notify(alice, 1)
    notify(alice, 2)
    services.notification_read(user=alice, notification_id=notify(alice, 3).pk)
    notify(bob, 1)

    page = html(portal.get("/access/"))

    assert 'data-testid="nav-bell" data-unread="2"' in page
    assert 'data-testid="nav-bell-count">2</span>' in page


def test_no_bell_for_visitors(db):
    assert 'data-testid="nav-bell"' not in html(Client().get("/"))


def test_the_bell_costs_one_query(portal, alice):
    notify(alice)
    with CaptureQueriesContext(connection) as counted:
        portal.get("/wallet/history/")
    bell = [q for q in counted.captured_queries if "notifications_notification" in q["sql"]]
    assert len(bell) == 1 and "COUNT(" in bell[0]["sql"]


def test_the_page_lists_own_notifications_newest_first(portal, alice, bob, django_assert_max_num_queries):
    first = notify(alice, 1)
    second = notify(alice, 2, kind="referral_bonus", amount="5.00")
    notify(bob, 3)

    with django_assert_max_num_queries(6):
        response = portal.get(LIST)

    page = html(response)
    assert response.status_code == 200
    assert [row.pk for row, _text in response.context["items"]] == [second.pk, first.pk]
    assert "5.00 ZNC referral bonus was credited to your balance." in page
    assert "Your balance is 9.00 ZNC, below 10.00 ZNC." in page
    assert page.count('data-testid="notification"') == 2


def test_the_page_in_russian(portal, alice):
    notify(alice)
    portal.cookies["django_language"] = "ru"

    page = html(portal.get(LIST))

    assert "На вашем балансе 9.00 ZNC — меньше 10.00 ZNC." in page
    assert "Отметить все как прочитанные" in page


def test_unread_only(portal, alice):
    services.notification_read(user=alice, notification_id=notify(alice, 1).pk)
    unread = notify(alice, 2)

    response = portal.get(LIST + "?unread=1")

    assert [row.pk for row, _text in response.context["items"]] == [unread.pk]


def test_mark_one_and_all_read(portal, alice):
    one, two, three = notify(alice, 1), notify(alice, 2), notify(alice, 3)

    response = portal.post(f"/notifications/{one.pk}/read/")
    assert (response.status_code, response["Location"]) == (302, LIST)
    assert list(Notification.objects.filter(read_at__isnull=True).order_by("id").values_list("pk", flat=True)) == [
        two.pk,
        three.pk,
    ]

    portal.post("/notifications/read-all/")
    assert not Notification.objects.filter(read_at__isnull=True).exists()
    assert 'data-unread="0"' in html(portal.get(LIST))


def test_someone_elses_notification_is_404_and_stays_unread(portal, bob):
    theirs = notify(bob)

    assert portal.post(f"/notifications/{theirs.pk}/read/").status_code == 404
    assert portal.post("/notifications/999999/read/").status_code == 404
    portal.post("/notifications/read-all/")
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_marking_wants_post_and_csrf(alice):
    row = notify(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.get(f"/notifications/{row.pk}/read/").status_code == 405
    assert client.post(f"/notifications/{row.pk}/read/").status_code == 403
    assert client.post("/notifications/read-all/").status_code == 403
    row.refresh_from_db()
    assert row.read_at is None


def test_visitors_are_sent_to_login(db):
    client = Client()
    for response in (client.get(LIST), client.post("/notifications/read-all/")):
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_preferences_on_the_profile(portal, alice):
    Preference.objects.create(user=alice, kind="balance_low", email=False)

    page = html(portal.get("/profile/"))

    assert 'data-testid="notification-preferences"' in page
    assert 'name="email_balance_low" id="id_email_balance_low"' in page
    assert 'name="email_token_expiring" id="id_email_token_expiring" checked' in page
    assert 'name="email_balance_low" id="id_email_balance_low" checked' not in page


def test_saving_preferences(portal, alice):
    # Ticked boxes stay on; an unticked box turns its kind off.
    response = portal.post("/notifications/preferences/", {"email_token_expiring": "on", "email_balance_low": "on"})

    assert (response.status_code, response["Location"]) == (302, "/profile/")
    off = set(Preference.objects.filter(user=alice, email=False).values_list("kind", flat=True))
    assert off == {
        "renewal_upcoming",
        "token_renewed",
        "renewal_failed",
        "referral_bonus",
        "webhook_endpoint_disabled",
        "gift_claimed",
        "gift_declined",
        "gift_expired",
        "tier_renewal_upcoming",
        "tier_renewed",
        "tier_renewal_failed",
    }


def test_unsubscribe_page_confirms_before_it_unsubscribes(alice):
    link = services.unsubscribe_url(user_id=alice.pk, kind="balance_low").split("example.test", 1)[-1]
    client = Client()

    confirm = client.get(link.removeprefix("http://localhost:8000"))
    assert confirm.status_code == 200
    assert 'data-testid="unsubscribe-confirm"' in html(confirm)
    assert not Preference.objects.exists()

    done = client.post(link.removeprefix("http://localhost:8000"))
    assert 'data-testid="unsubscribe-done"' in html(done)
    assert list(Preference.objects.values_list("user", "kind", "email")) == [(alice.pk, "balance_low", False)]


@pytest.mark.parametrize("tamper", ["forged", "other_kind", "cut", "other_salt"])
def test_a_forged_unsubscribe_link_does_nothing_and_says_so(alice, tamper):
    from django.core import signing

    good = services.unsubscribe_url(user_id=alice.pk, kind="balance_low").rsplit("/", 2)[-2]
    token = {
        "forged": "eyJ1IjoiMSIsImsiOiJiYWxhbmNlX2xvdyJ9:1xZ8vZ:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "other_kind": good.replace(good.split(":")[0], signing.b64_encode(b'{"u":"x","k":"token_renewed"}').decode()),
        "cut": good[:-3],
        "other_salt": signing.dumps({"u": str(alice.pk), "k": "balance_low"}),
    }[tamper]

    for response in (
        Client().get(f"/notifications/unsubscribe/{token}/"),
        Client().post(f"/notifications/unsubscribe/{token}/"),
    ):
        assert response.status_code == 400
        assert 'data-testid="unsubscribe-invalid"' in html(response)
    assert not Preference.objects.exists()


def test_switching_language_is_remembered_for_mails(portal, alice):
    response = portal.post("/i18n/setlang/", {"language": "ru", "next": "/profile/"})

    assert (response.status_code, response["Location"]) == (302, "/profile/")
    assert response.cookies["django_language"].value == "ru"
    assert User.objects.get(pk=alice.pk).language == "ru"
    portal.post("/i18n/setlang/", {"language": "xx"})
    assert User.objects.get(pk=alice.pk).language == "ru"


def test_visitors_switch_language_as_before(db):
    response = Client().post("/i18n/setlang/", {"language": "ru", "next": "/"})

    assert response.status_code == 302
    assert response.cookies["django_language"].value == "ru"
