"""``/api/v1/notifications`` and ``/api/v1/users/me/notification-preferences``: shape, ownership, bad input."""

import pytest

from notifications import services
from notifications.models import Kind, Notification, Preference

pytestmark = pytest.mark.django_db

LIST = "/api/v1/notifications"
PREFS = "/api/v1/users/me/notification-preferences"


def notify(user, n: int) -> Notification:
    return Notification.objects.create(
        user=user, kind="balance_low", key=f"balance_low:{n}", data={"balance_after": f"{n}.00", "threshold": "10.00"}
    )


def test_list_shape_newest_first_and_counts(as_user, alice, bob, django_assert_max_num_queries):
    rows = [notify(alice, n) for n in range(3)]
    services.notification_read(user=alice, notification_id=rows[0].pk)
    notify(bob, 9)
    client = as_user(alice)

    with django_assert_max_num_queries(4):
        response = client.get(LIST)

    body = response.json()
    assert response.status_code == 200
    assert (body["total"], body["unread"]) == (3, 2)
    assert [item["id"] for item in body["items"]] == [rows[2].pk, rows[1].pk, rows[0].pk]
    assert body["items"][0] == {
        "id": rows[2].pk,
        "kind": "balance_low",
        "title": "Your balance is low",
        "body": "Your balance is 2.00 ZNC, below 10.00 ZNC. Top up to keep buying and renewing access.",
        "created_at": body["items"][0]["created_at"],
        "read": False,
    }
    assert body["items"][2]["read"] is True


def test_the_api_answers_in_english_whatever_the_users_language(as_user, alice):
    alice.language = "ru"
    alice.save(update_fields=["language"])
    notify(alice, 1)

    response = as_user(alice).get(LIST, HTTP_ACCEPT_LANGUAGE="ru")

    assert response.json()["items"][0]["title"] == "Your balance is low"


def test_unread_only_limit_and_offset(as_user, alice):
    rows = [notify(alice, n) for n in range(5)]
    services.notification_read(user=alice, notification_id=rows[4].pk)
    client = as_user(alice)

    unread = client.get(LIST, {"unread_only": "true", "limit": 2, "offset": 1}).json()

    assert (unread["total"], unread["unread"]) == (4, 4)
    assert [item["id"] for item in unread["items"]] == [rows[2].pk, rows[1].pk]


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"unread_only": "maybe"}])
def test_bad_list_parameters_are_400(as_user, alice, query):
    response = as_user(alice).get(LIST, query)

    assert response.status_code == 400
    assert "detail" in response.json()


def test_mark_one_read(as_user, alice):
    row = notify(alice, 1)

    response = as_user(alice).post(f"{LIST}/{row.pk}/read")

    assert response.status_code == 200
    assert response.json()["read"] is True
    row.refresh_from_db()
    assert row.read_at is not None
    again = as_user(alice).post(f"{LIST}/{row.pk}/read")
    assert again.status_code == 200
    row_after = Notification.objects.get(pk=row.pk)
    assert row_after.read_at == row.read_at  # the first read time stays


def test_someone_elses_or_unknown_notification_is_404(as_user, alice, bob):
    theirs = notify(bob, 1)
    client = as_user(alice)

    for path in (
        f"{LIST}/{theirs.pk}/read",
        f"{LIST}/999999/read",
        f"{LIST}/99999999999999999999999/read",
        f"{LIST}/not-a-number/read",
    ):
        response = client.post(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Notification not found"}
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_read_all_marks_only_mine(as_user, alice, bob):
    notify(alice, 1)
    notify(alice, 2)
    theirs = notify(bob, 3)

    response = as_user(alice).post(f"{LIST}/read-all")

    assert response.json() == {"marked": 2}
    assert not Notification.objects.filter(user=alice, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_anonymous_is_refused(api, alice):
    row = notify(alice, 1)
    for method, path in (
        ("get", LIST),
        ("post", f"{LIST}/{row.pk}/read"),
        ("post", f"{LIST}/read-all"),
        ("get", PREFS),
        ("put", PREFS),
    ):
        assert getattr(api, method)(path).status_code == 403


def test_preferences_default_on_and_put_changes_only_what_it_names(as_user, alice, bob):
    client = as_user(alice)
    assert client.get(PREFS).json() == {kind: {"email": True} for kind in Kind.values}

    response = client.put(PREFS, {"balance_low": {"email": False}, "token_renewed": {"email": False}}, format="json")
    client.put(PREFS, {"token_renewed": {"email": True}}, format="json")

    assert response.status_code == 200
    assert response.json()["balance_low"] == {"email": False}
    assert client.get(PREFS).json() == {kind: {"email": kind != "balance_low"} for kind in Kind.values}
    assert as_user(bob).get(PREFS).json()["balance_low"] == {"email": True}


@pytest.mark.parametrize(
    "payload",
    [
        {"balance_low": {"email": False}, "newsletter": {"email": False}},
        {"balance_low": {"email": "no"}},
        {"balance_low": False},
        {"balance_low": {"email": False, "sms": True}},
        ["balance_low"],
    ],
)
def test_bad_preferences_are_400_and_change_nothing(as_user, alice, payload):
    response = as_user(alice).put(PREFS, payload, format="json")

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Preference.objects.exists()


def test_an_unknown_kind_is_named(as_user, alice):
    response = as_user(alice).put(PREFS, {"newsletter": {"email": False}}, format="json")

    assert response.json()["detail"] == "Unknown notification kind(s): newsletter"
