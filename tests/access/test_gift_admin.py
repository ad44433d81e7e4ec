import pytest

from access import gifts, services
from access.models import AccessToken, GiftStatus
from accounts.models import AuditLog
from tests.helpers import fund, html, messages_of
from wallet.models import Transaction

pytestmark = pytest.mark.django_db

GIFTS = "/admin/access/gift/"


def buy_token(user, hours: int = 12) -> AccessToken:
    return services.token_purchase(user=user, duration_hours=hours, scope="full")


@pytest.fixture
def two_gifts(alice, bob):
    """One pending gift (to friend@example.com) and one claimed by bob."""
    fund(alice, "100")
    pending, _code = gifts.gift_send(user=alice, token_id=buy_token(alice).pk, recipient_email="friend@example.com")
    claimed, code = gifts.gift_send(user=alice, token_id=buy_token(alice, 24).pk)
    gifts.gift_claim(user=bob, code=code, accept=True)
    claimed.refresh_from_db()
    return {"pending": pending, "claimed": claimed}


def test_changelist_lists_gifts_read_only(staff, two_gifts):
    response = staff.get(GIFTS)

    page = html(response)
    assert response.status_code == 200
    assert page.count('class="action-checkbox"') == 2
    assert "friend@example.com" in page
    assert f"{two_gifts['pending'].token.secret_prefix}…" in page
    assert '<option value="cancel_pending">Cancel selected pending gifts</option>' in page
    assert f"{GIFTS}add/" not in page  # nothing is added by hand
    assert two_gifts["pending"].code_digest not in html(staff.get(f"{GIFTS}{two_gifts['pending'].pk}/change/"))


def test_changelist_filters_and_search(staff, two_gifts):
    pending = html(staff.get(f"{GIFTS}?status__exact=pending"))
    claimed = html(staff.get(f"{GIFTS}?status__exact=claimed"))
    by_recipient = html(staff.get(f"{GIFTS}?q=bob"))
    listing = html(staff.get(GIFTS))

    assert str(two_gifts["pending"].pk) in pending and str(two_gifts["claimed"].pk) not in pending
    assert str(two_gifts["claimed"].pk) in claimed and str(two_gifts["pending"].pk) not in claimed
    assert str(two_gifts["claimed"].pk) in by_recipient and str(two_gifts["pending"].pk) not in by_recipient
    assert "By status" in listing and "By sent" in listing and "Past 7 days" in listing


def test_detail_page_cannot_be_changed(staff, two_gifts):
    gift = two_gifts["pending"]

    response = staff.post(f"{GIFTS}{gift.pk}/change/", {"status": "claimed"})

    assert response.status_code == 403
    gift.refresh_from_db()
    assert gift.status == GiftStatus.PENDING


def test_cancel_action_cancels_pending_and_skips_the_rest(staff, admin_user, alice, bob, two_gifts):
    pending, claimed = two_gifts["pending"], two_gifts["claimed"]
    ledger_before = Transaction.objects.count()

    response = staff.post(
        GIFTS,
        {"action": "cancel_pending", "_selected_action": [str(pending.pk), str(claimed.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    assert messages_of(response) == [
        "1 gift cancelled: its token is back with its sender.",
        "1 gift was not pending and was left alone.",
    ]
    pending.refresh_from_db()
    claimed.refresh_from_db()
    assert (pending.status, claimed.status) == (GiftStatus.CANCELLED, GiftStatus.CLAIMED)
    assert pending.token.user == alice and claimed.token.user == bob
    assert Transaction.objects.count() == ledger_before
    entry = AuditLog.objects.get(action="gift_cancel")
    assert (entry.user, entry.resource_id, entry.details["by"]) == (admin_user, str(pending.pk), "admin")
    assert entry.ip_address == "127.0.0.1"


def test_non_staff_cannot_open_gift_admin(portal):
    response = portal.get(GIFTS)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_gift_admin_in_russian(staff, two_gifts):
    page = html(staff.get(GIFTS, HTTP_ACCEPT_LANGUAGE="ru"))

    assert "Отменить выбранные ожидающие подарки" in page
