from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from access import services
from access.models import AccessToken, Bundle
from accounts.models import AuditLog, User
from tests.helpers import html
from wallet.models import Transaction
from wallet.services import balance_change

pytestmark = pytest.mark.django_db

TOKENS = "/admin/access/accesstoken/"
BUNDLES = "/admin/access/bundle/"

VALID_BUNDLE = {
    "name": "Weekend Pack",
    "description": "Two days.",
    "token_count": "2",
    "duration_hours": "24",
    "scope": "full",
    "discount_percent": "5.00",
    "base_price": "36.00",
    "total_price": "34.20",
    "is_active": "on",
}


def fund(user, amount: str) -> None:
    balance_change(user_id=user.pk, amount=Decimal(amount), kind="deposit", description="Test funding")


def balance(user) -> Decimal:
    return User.objects.values_list("balance", flat=True).get(pk=user.pk)


def buy_token(user, hours: int = 12) -> AccessToken:
    return services.token_purchase(user=user, duration_hours=hours, scope="full")


def activate(token: AccessToken, ago: timedelta) -> None:
    activated_at = timezone.now() - ago
    AccessToken.objects.filter(pk=token.pk).update(activated_at=activated_at, expires_at=activated_at + token.duration)


@pytest.fixture
def four_tokens(alice):
    """One token in each status: ready, active, expired, revoked."""
    fund(alice, "100")
    ready, active, expired, revoked = buy_token(alice, 12), buy_token(alice, 24), buy_token(alice, 1), buy_token(alice)
    activate(active, timedelta(hours=23))
    activate(expired, timedelta(hours=1, seconds=1))
    services.token_revoke(user=alice, token_id=revoked.pk)
    return {"ready": ready, "active": active, "expired": expired, "revoked": revoked}


def listed(response) -> set:
    return {token.pk for token in response.context["cl"].result_list}


# --- Tokens ----------------------------------------------------------------------------------------


def test_force_revoke_action_revokes_without_refund(staff, admin_user, alice):
    fund(alice, "40")
    first, second, kept = buy_token(alice), buy_token(alice), buy_token(alice)
    activate(second, timedelta(hours=1))
    ledger_before = list(Transaction.objects.order_by("user_id", "seq").values_list("pk", flat=True))

    response = staff.post(
        TOKENS, {"action": "force_revoke", "_selected_action": [str(first.pk), str(second.pk)]}, follow=True
    )

    assert response.status_code == 200
    assert "2 tokens revoked, no refund." in html(response)
    for token in (first, second):
        token.refresh_from_db()
        assert token.revoked_at is not None
        assert token.revoked_by_id == admin_user.pk
        assert token.revoke_reason == "revoked by admin"
        assert token.refund_id is None
    kept.refresh_from_db()
    assert kept.revoked_at is None
    assert list(Transaction.objects.order_by("user_id", "seq").values_list("pk", flat=True)) == ledger_before
    assert not Transaction.objects.filter(kind="refund").exists()
    assert balance(alice) == Decimal("10.00")
    entries = AuditLog.objects.filter(action="admin_force_revoke", user=admin_user)
    assert sorted(entries.values_list("resource_id", flat=True)) == sorted([str(first.pk), str(second.pk)])
    call_command("wallet_audit", verbosity=0)


def test_force_revoke_leaves_revoked_tokens_alone(staff, alice):
    fund(alice, "20")
    revoked, live = buy_token(alice), buy_token(alice)
    services.token_revoke(user=alice, token_id=revoked.pk)
    revoked.refresh_from_db()
    revoked_at = revoked.revoked_at

    response = staff.post(
        TOKENS, {"action": "force_revoke", "_selected_action": [str(revoked.pk), str(live.pk)]}, follow=True
    )

    assert "1 token revoked, no refund. 1 was already revoked." in html(response)
    revoked.refresh_from_db()
    assert revoked.revoked_at == revoked_at
    assert revoked.revoke_reason == "revoked by owner"
    assert AccessToken.objects.get(pk=live.pk).revoked_at is not None
    assert AuditLog.objects.filter(action="admin_force_revoke").count() == 1
    call_command("wallet_audit", verbosity=0)


@pytest.mark.parametrize("status", ["ready", "active", "expired", "revoked"])
def test_status_filter(staff, four_tokens, status):
    response = staff.get(TOKENS, {"status": status})

    assert response.status_code == 200
    assert listed(response) == {four_tokens[status].pk}


def test_status_filter_unset_lists_everything(staff, four_tokens):
    assert listed(staff.get(TOKENS)) == {token.pk for token in four_tokens.values()}


def test_changelist_shows_status_and_prefix(staff, four_tokens):
    page = html(staff.get(TOKENS))

    for token in four_tokens.values():
        assert token.secret_prefix in page
    for label in ("Ready", "Active", "Expired", "Revoked"):
        assert f'<td class="field-status">{label}</td>' in page


def test_search_by_prefix_email_and_id(staff, alice, bob):
    fund(alice, "10")
    fund(bob, "10")
    mine, theirs = buy_token(alice), buy_token(bob)

    assert listed(staff.get(TOKENS, {"q": mine.secret_prefix})) == {mine.pk}
    assert listed(staff.get(TOKENS, {"q": "bob@example.com"})) == {theirs.pk}
    assert listed(staff.get(TOKENS, {"q": "alice"})) == {mine.pk}
    assert listed(staff.get(TOKENS, {"q": str(theirs.pk)})) == {theirs.pk}


def test_secrets_never_appear_in_admin_html(staff, alice, four_tokens):
    pages = [
        staff.get(TOKENS),
        staff.get(TOKENS, {"status": "ready"}),
        staff.get(f"{TOKENS}{four_tokens['ready'].pk}/change/"),
        staff.get(f"{TOKENS}{four_tokens['active'].pk}/change/"),
        staff.get(f"/admin/accounts/user/{alice.pk}/change/"),
    ]

    for response in pages:
        assert response.status_code == 200
        page = html(response)
        for token in four_tokens.values():
            assert token.secret not in page
            assert token.secret_encrypted not in page
            assert token.secret_digest not in page
    assert four_tokens["ready"].secret_prefix in html(pages[2])


def test_tokens_are_read_only_in_admin(staff, alice):
    fund(alice, "10")
    token = buy_token(alice)

    assert staff.get(f"{TOKENS}add/").status_code == 403
    assert staff.post(f"{TOKENS}{token.pk}/change/", {"scope": "certificates_only"}).status_code == 403
    assert staff.post(f"{TOKENS}{token.pk}/delete/", {"post": "yes"}).status_code == 403
    token.refresh_from_db()
    assert token.scope == "full"
    page = html(staff.get(f"{TOKENS}{token.pk}/change/"))
    assert 'name="scope"' not in page
    assert "delete_selected" not in html(staff.get(TOKENS))


def test_user_change_page_lists_the_users_tokens(staff, alice, bob):
    fund(alice, "20")
    fund(bob, "10")
    mine, theirs = buy_token(alice, 12), buy_token(bob, 12)

    page = html(staff.get(f"/admin/accounts/user/{alice.pk}/change/"))
    add_page = html(staff.get("/admin/accounts/user/add/"))

    assert 'id="access_tokens-group"' in page
    assert mine.secret_prefix in page
    assert theirs.secret_prefix not in page
    assert "Latest transactions" in page  # the wallet's inline stays
    assert "Adjust balance" in page
    assert 'id="access_tokens-group"' not in add_page
    assert 'id="transactions-group"' not in add_page


def test_admin_pages_need_staff(client, bob):
    client.force_login(bob)

    assert client.get(TOKENS).status_code == 302
    assert client.get(BUNDLES).status_code == 302


# --- Bundles ---------------------------------------------------------------------------------------


def test_bundle_create_through_the_service(staff, admin_user):
    response = staff.post(f"{BUNDLES}add/", VALID_BUNDLE)

    assert response.status_code == 302
    bundle = Bundle.objects.get(name="Weekend Pack")
    assert (bundle.token_count, bundle.duration_hours, bundle.total_price, bundle.is_active) == (
        2,
        24,
        Decimal("34.20"),
        True,
    )
    assert response["Location"] == BUNDLES
    entry = AuditLog.objects.get(action="bundle_create")
    assert (entry.user_id, entry.resource_id) == (admin_user.pk, str(bundle.pk))


def test_bundle_russian_texts_are_edited_in_admin(staff, admin_user):
    bundle = Bundle.objects.get(name="Pro Bundle")
    form = staff.get(f"{BUNDLES}{bundle.pk}/change/", HTTP_ACCEPT_LANGUAGE="ru")
    data = {
        **VALID_BUNDLE,
        "name": bundle.name,
        "name_ru": "Мастерская",
        "description": bundle.description,
        "description_ru": "10 токенов по 24 часа.",
        "token_count": "10",
        "discount_percent": "15.00",
        "base_price": "180.00",
        "total_price": "153.00",
    }

    response = staff.post(f"{BUNDLES}{bundle.pk}/change/", data)

    page = html(form)
    assert '<label for="id_name_ru">Название на русском:</label>' in page
    assert '<input type="text" name="name_ru" value="Профи"' in page
    assert '<label for="id_description_ru">Описание на русском:</label>' in page
    assert response.status_code == 302
    bundle.refresh_from_db()
    assert (bundle.name, bundle.name_ru, bundle.description_ru) == (
        "Pro Bundle",
        "Мастерская",
        "10 токенов по 24 часа.",
    )
    entry = AuditLog.objects.get(action="bundle_update")
    assert entry.details["changed_fields"]["name_ru"] == {"old": "Профи", "new": "Мастерская"}
    assert set(entry.details["changed_fields"]) == {"name_ru", "description_ru"}


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("duration_hours", "5", "Invalid duration. Must be one of: [1, 12, 24, 168, 720]"),
        ("total_price", "40.00", "total_price must not exceed base_price"),
        ("total_price", "0", "Prices must be greater than 0"),
        ("token_count", "0", "Ensure this value is greater than or equal to 1."),
        ("discount_percent", "120", "Ensure this value is less than or equal to 100."),
        ("scope", "everything", "Select a valid choice. everything is not one of the available choices."),
    ],
)
def test_bundle_create_with_invalid_values_is_refused(staff, field, value, error):
    count = Bundle.objects.count()

    response = staff.post(f"{BUNDLES}add/", {**VALID_BUNDLE, field: value})

    assert response.status_code == 200
    assert error in html(response)
    assert Bundle.objects.count() == count
    assert not AuditLog.objects.filter(action="bundle_create").exists()


def test_bundle_change_is_audited_with_the_difference(staff, admin_user):
    bundle = Bundle.objects.get(name="Starter Pack")
    data = {
        "name": bundle.name,
        "name_ru": bundle.name_ru,
        "description": bundle.description,
        "description_ru": bundle.description_ru,
        "token_count": "5",
        "duration_hours": "24",
        "scope": "full",
        "discount_percent": "10.00",
        "base_price": "90.00",
        "total_price": "80.00",
        "is_active": "on",
    }

    response = staff.post(f"{BUNDLES}{bundle.pk}/change/", data)

    assert response.status_code == 302
    bundle.refresh_from_db()
    assert bundle.total_price == Decimal("80.00")
    entry = AuditLog.objects.get(action="bundle_update")
    assert entry.user_id == admin_user.pk
    assert entry.details == {"changed_fields": {"total_price": {"old": "81.00", "new": "80.00"}}}


def test_bundle_change_to_an_invalid_total_is_refused(staff):
    bundle = Bundle.objects.get(name="Starter Pack")
    data = {**VALID_BUNDLE, "name": bundle.name, "base_price": "90.00", "total_price": "95.00"}

    response = staff.post(f"{BUNDLES}{bundle.pk}/change/", data)

    assert response.status_code == 200
    assert "total_price must not exceed base_price" in html(response)
    bundle.refresh_from_db()
    assert bundle.total_price == Decimal("81.00")


def test_bundle_list_edits_is_active(staff):
    bundles = list(Bundle.objects.order_by("total_price", "name"))
    data = {
        "form-TOTAL_FORMS": str(len(bundles)),
        "form-INITIAL_FORMS": str(len(bundles)),
        "_save": "Save",
    }
    for i, bundle in enumerate(bundles):
        data[f"form-{i}-id"] = str(bundle.pk)
        if bundle.name != "Pro Bundle":
            data[f"form-{i}-is_active"] = "on"

    response = staff.post(BUNDLES, data)

    assert response.status_code == 302
    assert set(Bundle.objects.filter(is_active=False).values_list("name", flat=True)) == {"Pro Bundle"}
    entry = AuditLog.objects.get(action="bundle_update")
    assert entry.details == {"changed_fields": {"is_active": {"old": "True", "new": "False"}}}


def test_bundle_delete_takes_it_off_sale(staff, alice):
    fund(alice, "81")
    bundle = Bundle.objects.get(name="Starter Pack")
    services.bundle_purchase(user=alice, bundle_id=bundle.pk)

    response = staff.post(f"{BUNDLES}{bundle.pk}/delete/", {"post": "yes"}, follow=True)

    assert response.status_code == 200
    bundle.refresh_from_db()
    assert bundle.is_active is False
    assert AccessToken.objects.filter(bundle=bundle).count() == 5
    assert "“Starter Pack” is off sale now." in html(response)
    assert "deleted successfully" not in html(response)
    assert AuditLog.objects.filter(action="bundle_delete", resource_id=str(bundle.pk)).count() == 1
    call_command("wallet_audit", verbosity=0)


def test_take_off_sale_action(staff):
    pro, ultimate = Bundle.objects.get(name="Pro Bundle"), Bundle.objects.get(name="Ultimate Package")

    response = staff.post(
        BUNDLES, {"action": "take_off_sale", "_selected_action": [str(pro.pk), str(ultimate.pk)]}, follow=True
    )

    assert "2 bundles taken off sale." in html(response)
    assert set(Bundle.objects.filter(is_active=False).values_list("name", flat=True)) == {
        "Pro Bundle",
        "Ultimate Package",
    }
    assert Bundle.objects.count() == 4
