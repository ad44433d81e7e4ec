"""Top-ups in RUB, USD and EUR: rates, routing, rounding, the frozen amount and the webhook's amount check.

Stripe's HTTP API is faked (``responses``) and its webhooks are signed for real,
as in test_provider_stripe; the database and Redis are real.
"""

from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses

from accounts.api import PREFERRED_CURRENCIES
from accounts.models import AuditLog, User
from tests.factories import UserFactory
from tests.helpers import assert_ledger_consistent, balance
from tests.wallet.helpers import signed_webhook
from tests.wallet.test_provider_stripe import (
    API,
    CHECKOUT_URL,
    CS_ID,
    SECRET_KEY,
    WEBHOOK_SECRET,
    checkout_session,
    deliver,
    event_payload,
)
from tests.wallet.test_provider_yookassa import API as YK_API
from tests.wallet.test_provider_yookassa import YK_ID, notify, yk_payment
from wallet import currencies
from wallet.currencies import CURRENCIES, CurrencyUnavailable, quote, to_minor
from wallet.models import CurrencyRate, Payment, Transaction
from wallet.services import SYSTEM, Actor, currency_rate_set, payment_create
from zenzefi import metrics
from zenzefi.errors import DomainError

pytestmark = pytest.mark.django_db

PURCHASE = "/api/v1/currency/purchase"
RATES = "/api/v1/currency/rates"
RETURN_URL = "http://localhost:8000/wallet/"


def enable(currency: str, price: str, *, enabled: bool = True, actor: Actor = SYSTEM) -> CurrencyRate:
    return currency_rate_set(currency=currency, znc_price=Decimal(price), enabled=enabled, actor=actor)


@pytest.fixture
def stripe_usd(settings):
    """Stripe configured for USD and EUR (its API faked); RUB routed to YooKassa, which has no keys here."""
    settings.PAYMENT_PROVIDER = "stripe"
    settings.PAYMENT_PROVIDER_BY_CURRENCY = {"RUB": "yookassa", "USD": "stripe", "EUR": "stripe"}
    settings.ENABLE_MOCK_PAYMENTS = False
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.YOOKASSA_SHOP_ID = settings.YOOKASSA_SECRET_KEY = ""
    settings.BACKEND_URL = "http://localhost:8000"
    enable("USD", "0.107")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def usd_session(amount_total: int = 1605, currency: str = "usd", **kwargs) -> dict:
    return {**checkout_session(**kwargs), "amount_total": amount_total, "currency": currency}


@pytest.fixture
def usd_payment(stripe_usd, as_user, alice) -> Payment:
    """Alice's pending 150 ZNC top-up in USD at 0.107: 16.05 USD, an open (fake) Checkout Session."""
    stripe_usd.add(responses.POST, f"{API}/checkout/sessions", json=usd_session())
    response = as_user(alice).post(
        PURCHASE, {"amount_znc": "150", "currency": "USD", "return_url": RETURN_URL}, format="json"
    )
    assert response.status_code == 201, response.content
    return Payment.objects.get(pk=response.json()["id"])


def paid_event(*, amount_total: int = 1605, currency: str = "usd") -> str:
    session = usd_session(amount_total, currency, payment_status="paid", status="complete")
    return event_payload("checkout.session.completed", session)


# --- A USD payment through Stripe ------------------------------------------------------------------


def test_usd_purchase_opens_a_checkout_session_in_dollars_at_the_frozen_rate(usd_payment, stripe_usd, alice):
    payment = usd_payment

    assert (payment.currency, payment.rate, payment.amount_znc) == ("USD", Decimal("0.107000"), Decimal("150.00"))
    assert (payment.amount_money, payment.amount_minor) == (Decimal("16.05"), 1605)
    assert (payment.provider, payment.status, payment.provider_payment_id) == ("stripe", "pending", CS_ID)
    [call] = stripe_usd.calls
    sent = {key: values[0] for key, values in parse_qs(call.request.body).items()}
    assert sent["line_items[0][price_data][currency]"] == "usd"
    assert sent["line_items[0][price_data][unit_amount]"] == "1605"
    assert sent["line_items[0][price_data][product_data][name]"] == "150.00 ZNC"
    audit = AuditLog.objects.get(action="payment_create", resource_id=str(payment.pk))
    assert audit.details == {
        "provider": "stripe",
        "amount_znc": "150.00",
        "currency": "USD",
        "rate": "0.107000",
        "amount": "16.05",
    }
    assert balance(alice) == 0
    assert not Transaction.objects.exists()


def test_webhook_credits_the_znc_asked_for_even_after_the_admin_changed_the_rate(usd_payment, api, alice, admin_user):
    # The admin doubles the dollar price before Stripe's webhook arrives: the payment keeps its own.
    enable("USD", "0.25", actor=Actor(user=admin_user))

    response = deliver(api, paid_event(amount_total=1605, currency="usd"))

    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "processed": True}
    usd_payment.refresh_from_db()
    assert (usd_payment.status, usd_payment.rate, usd_payment.amount_minor) == (
        "succeeded",
        Decimal("0.107000"),
        1605,
    )
    assert balance(alice) == Decimal("150.00")
    [entry] = Transaction.objects.filter(user=alice)
    assert (entry.kind, entry.amount, entry.payment_id) == ("deposit", Decimal("150.00"), CS_ID)
    assert usd_payment.transaction_id == entry.pk
    # A redelivery credits nothing more.
    assert deliver(api, paid_event()).json() == {"received": True, "processed": False}
    assert balance(alice) == Decimal("150.00")
    assert_ledger_consistent()


@pytest.mark.parametrize(
    ("amount_total", "currency"),
    [(1604, "usd"), (160500, "usd"), (1605, "eur")],
    ids=["one-cent-less", "hundred-times-more", "other-currency"],
)
def test_webhook_reporting_another_amount_or_currency_credits_nothing(usd_payment, api, alice, amount_total, currency):
    response = deliver(api, paid_event(amount_total=amount_total, currency=currency))

    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "processed": False}
    usd_payment.refresh_from_db()
    assert usd_payment.status == Payment.Status.MISMATCH
    assert usd_payment.is_final and usd_payment.completed_at is not None
    assert usd_payment.transaction_id is None
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    audit = AuditLog.objects.get(action="payment_mismatch")
    assert (audit.resource_type, audit.resource_id) == ("Payment", str(usd_payment.pk))
    assert audit.details == {
        "source": "webhook:stripe",
        "expected": {"amount_minor": 1605, "currency": "USD"},
        "reported": {"amount_minor": amount_total, "currency": currency.upper()},
    }
    # Final: the right amount arriving afterwards credits nothing either.
    assert deliver(api, paid_event()).json() == {"received": True, "processed": False}
    assert balance(alice) == 0
    assert_ledger_consistent()


def test_mismatch_is_counted_and_logged(usd_payment, api, caplog, django_capture_on_commit_callbacks):
    counter = metrics.PAYMENTS.labels("stripe", "mismatch")
    before = counter._value.get()

    with caplog.at_level("WARNING", logger="wallet.services"), django_capture_on_commit_callbacks(execute=True):
        deliver(api, paid_event(amount_total=1, currency="usd"))

    assert counter._value.get() == before + 1
    [record] = [r for r in caplog.records if r.name == "wallet.services"]
    assert record.levelname == "WARNING"
    assert "reported 1 USD, expected 1605 USD" in record.getMessage()


# --- Availability -----------------------------------------------------------------------------------


def test_disabled_currency_is_refused_and_nothing_written(mock_payments, as_user, alice):
    response = as_user(alice).post(PURCHASE, {"amount_znc": "100", "currency": "EUR"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "Currency EUR is not available. Available: RUB"
    assert not Payment.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="payment").exists()
    assert_ledger_consistent()


def test_unknown_currency_is_refused(mock_payments, as_user, alice):
    enable("USD", "0.11")

    response = as_user(alice).post(PURCHASE, {"amount_znc": "100", "currency": "GBP"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "Currency GBP is not available. Available: RUB, USD"
    assert not Payment.objects.exists()


def test_currency_whose_provider_has_no_keys_is_refused(stripe_usd, as_user, alice):
    # RUB is enabled, but routed to YooKassa, which is not configured here: only USD can be paid in.
    response = as_user(alice).post(PURCHASE, {"amount_znc": "100"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "Currency RUB is not available. Available: USD"
    assert not Payment.objects.exists()
    assert [rate.currency for rate in currencies.available()] == ["USD"]


def test_yookassa_takes_rubles_only(settings):
    settings.PAYMENT_PROVIDER = "yookassa"
    settings.PAYMENT_PROVIDER_BY_CURRENCY = {"RUB": "yookassa", "USD": "yookassa"}
    settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = "506751", "test_SECRET"
    enable("USD", "0.11")

    assert currencies.provider_name_for("RUB") == "yookassa"
    assert currencies.provider_name_for("USD") == ""
    assert [rate.currency for rate in currencies.available()] == ["RUB"]
    with pytest.raises(CurrencyUnavailable) as raised:
        currencies.rate_for("USD")
    assert raised.value.detail == "Currency USD is not available. Available: RUB"


def test_mock_takes_every_enabled_currency(mock_payments):
    enable("EUR", "0.10")
    enable("USD", "0.11")

    assert [rate.currency for rate in currencies.available()] == ["RUB", "EUR", "USD"]
    assert {currencies.provider_name_for(code) for code in CURRENCIES} == {"mock"}


# --- Rounding at the minor unit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "znc", "currency", "amount", "minor"),
    [
        ("0.107", "1", "USD", "0.11", 11),  # 0.107 → 0.11
        ("0.333", "3", "EUR", "1.00", 100),  # 0.999 → 1.00
        ("0.125", "1", "USD", "0.13", 13),  # half up, not half even (0.12)
        ("0.001", "5", "EUR", "0.01", 1),  # 0.005 → 0.01
        ("10", "150", "RUB", "1500.00", 150000),
    ],
)
def test_quote_rounds_half_up_to_the_minor_unit(price, znc, currency, amount, minor):
    assert quote(Decimal(price), Decimal(znc), currency) == Decimal(amount)
    assert to_minor(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("currency", "price", "znc", "amount", "minor"),
    [("USD", "0.107", "1", "0.11", 11), ("EUR", "0.333", "3", "1.00", 100), ("USD", "0.125", "1", "0.13", 13)],
)
def test_payment_freezes_the_rounded_amount_and_the_exact_znc(
    mock_payments, alice, client, currency, price, znc, amount, minor
):
    enable(currency, price)

    payment = payment_create(user=alice, amount_znc=Decimal(znc), return_url=None, actor=SYSTEM, currency=currency)

    assert (payment.currency, payment.rate) == (currency, Decimal(price))
    assert (payment.amount_money, payment.amount_minor, payment.amount_znc) == (Decimal(amount), minor, Decimal(znc))
    # The mock's own checkout reports no amount: it credits the ZNC asked for, not amount / rate.
    client.force_login(alice)
    client.post(f"/wallet/checkout/{payment.pk}/submit/", {"action": "pay"})
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert balance(alice) == Decimal(znc)
    assert_ledger_consistent()


# --- The generic signed webhook reports amount_minor and currency, optionally ------------------------


def test_generic_webhook_checks_the_amount_it_reports(mock_payments, api, alice):
    enable("EUR", "0.333")
    good = payment_create(user=alice, amount_znc=Decimal("3"), return_url=None, actor=SYSTEM, currency="EUR")
    bad = payment_create(user=alice, amount_znc=Decimal("6"), return_url=None, actor=SYSTEM, currency="EUR")
    silent = payment_create(user=alice, amount_znc=Decimal("2"), return_url=None, actor=SYSTEM)

    ok = signed_webhook(
        api, {"payment_id": good.provider_payment_id, "status": "succeeded", "amount_minor": 100, "currency": "eur"}
    )
    wrong = signed_webhook(
        api, {"payment_id": bad.provider_payment_id, "status": "succeeded", "amount_minor": 199, "currency": "EUR"}
    )
    # Says nothing about the amount: credited as before.
    plain = signed_webhook(api, {"payment_id": silent.provider_payment_id, "status": "succeeded"})

    assert [r.json()["processed"] for r in (ok, wrong, plain)] == [True, False, True]
    statuses = dict(Payment.objects.values_list("pk", "status"))
    assert (statuses[good.pk], statuses[bad.pk], statuses[silent.pk]) == ("succeeded", "mismatch", "succeeded")
    assert balance(alice) == Decimal("5.00")
    assert AuditLog.objects.get(action="payment_mismatch").details["reported"] == {
        "amount_minor": 199,
        "currency": "EUR",
    }
    assert_ledger_consistent()


@pytest.mark.parametrize("amount_minor", ["100", 1.5, True, -1])
def test_generic_webhook_with_a_malformed_amount_is_400(mock_payments, api, alice, amount_minor):
    payment = payment_create(user=alice, amount_znc=Decimal("1"), return_url=None, actor=SYSTEM)

    response = signed_webhook(
        api, {"payment_id": payment.provider_payment_id, "status": "succeeded", "amount_minor": amount_minor}
    )

    assert response.status_code == 400
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0


# --- API ---------------------------------------------------------------------------------------------


def test_rates_lists_only_enabled_currencies_with_presets(mock_payments, api):
    response = api.get(RATES)

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "currency": "RUB",
                "znc_price": "10.00",
                "presets": [
                    {"amount_znc": "50.00", "amount": "500.00"},
                    {"amount_znc": "100.00", "amount": "1000.00"},
                    {"amount_znc": "150.00", "amount": "1500.00"},
                    {"amount_znc": "300.00", "amount": "3000.00"},
                    {"amount_znc": "500.00", "amount": "5000.00"},
                    {"amount_znc": "1000.00", "amount": "10000.00"},
                ],
            }
        ]
    }

    enable("USD", "0.107")
    enable("EUR", "0.5", enabled=False)
    items = api.get(RATES).json()["items"]

    assert [(item["currency"], item["znc_price"]) for item in items] == [("RUB", "10.00"), ("USD", "0.107")]
    assert items[1]["presets"][:2] == [
        {"amount_znc": "50.00", "amount": "5.35"},
        {"amount_znc": "100.00", "amount": "10.70"},
    ]


def test_rates_is_public_and_empty_when_no_provider_is_configured(settings, api):
    settings.PAYMENT_PROVIDER = "mock"
    settings.ENABLE_MOCK_PAYMENTS = False
    api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")  # not even looked at

    response = api.get(RATES)

    assert response.status_code == 200
    assert response.json() == {"items": []}


def test_purchase_in_rubles_keeps_amount_rub(mock_payments, as_user, alice):
    response = as_user(alice).post(PURCHASE, {"amount_znc": "150"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["currency"], body["amount"], body["amount_rub"], body["amount_znc"]) == (
        "RUB",
        "1500.00",
        "1500.00",
        "150.00",
    )
    assert as_user(alice).get(f"/api/v1/currency/payments/{body['id']}").json() == body


def test_purchase_in_dollars_answers_currency_and_amount(usd_payment, as_user, alice):
    response = as_user(alice).get(f"/api/v1/currency/payments/{usd_payment.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["currency"], body["amount"], body["amount_rub"], body["amount_znc"]) == (
        "USD",
        "16.05",
        None,
        "150.00",
    )
    assert (body["payment_id"], body["payment_url"], body["status"]) == (CS_ID, CHECKOUT_URL, "pending")


def test_purchase_currency_is_case_insensitive_and_not_the_preferred_one(mock_payments, as_user, alice):
    enable("EUR", "0.10")
    User.objects.filter(pk=alice.pk).update(preferred_currency="EUR")

    default = as_user(alice).post(PURCHASE, {"amount_znc": "10"}, format="json").json()
    euro = as_user(alice).post(PURCHASE, {"amount_znc": "10", "currency": "eur"}, format="json").json()

    assert (default["currency"], default["amount"]) == ("RUB", "100.00")
    assert (euro["currency"], euro["amount"], euro["amount_rub"]) == ("EUR", "1.00", None)


def test_me_preferred_currency(as_user, alice):
    assert as_user(alice).get("/api/v1/users/me").json()["preferred_currency"] == "RUB"

    response = as_user(alice).patch("/api/v1/users/me", {"preferred_currency": "usd"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["preferred_currency"] == "USD"
    assert User.objects.get(pk=alice.pk).preferred_currency == "USD"
    assert as_user(alice).get("/api/v1/users/me").json()["preferred_currency"] == "USD"


@pytest.mark.parametrize("value", ["GBP", "", "RUBLE"])
def test_me_preferred_currency_outside_the_list_is_400(as_user, alice, value):
    response = as_user(alice).patch("/api/v1/users/me", {"preferred_currency": value, "full_name": "X"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "preferred_currency must be one of RUB, USD, EUR"
    alice.refresh_from_db()
    assert (alice.preferred_currency, alice.full_name) == ("RUB", "Alice Buyer")


def test_accounts_list_of_currencies_is_the_wallets():
    assert PREFERRED_CURRENCIES == CURRENCIES


# --- Rates set by the admin ------------------------------------------------------------------------------


def test_rate_set_checks_the_price():
    for bad in ("0", "-1", "0.1234567", "NaN"):
        with pytest.raises(DomainError):
            enable("USD", bad)
    with pytest.raises(DomainError):
        enable("GBP", "1")
    assert CurrencyRate.objects.get(pk="USD").znc_price == Decimal("0.110000")
    assert not AuditLog.objects.filter(action="currency_rate_set").exists()


def test_admin_change_goes_through_the_service_and_is_audited(staff, admin_user):
    url = "/admin/wallet/currencyrate/USD/change/"
    assert staff.get("/admin/wallet/currencyrate/").status_code == 200
    assert staff.get(url).status_code == 200

    response = staff.post(url, {"znc_price": "0.107", "enabled": "on"})

    assert response.status_code == 302, response.content.decode()[:2000]
    rate = CurrencyRate.objects.get(pk="USD")
    assert (rate.znc_price, rate.enabled, rate.updated_by_id) == (Decimal("0.107000"), True, admin_user.pk)
    audit = AuditLog.objects.get(action="currency_rate_set")
    assert (audit.user_id, audit.resource_type, audit.resource_id) == (admin_user.pk, "CurrencyRate", "USD")
    assert audit.details == {
        "currency": "USD",
        "old": {"znc_price": "0.110000", "enabled": False},
        "new": {"znc_price": "0.107000", "enabled": True},
    }


def test_admin_refuses_a_zero_price(staff):
    response = staff.post("/admin/wallet/currencyrate/USD/change/", {"znc_price": "0", "enabled": "on"})

    assert response.status_code == 200
    assert "The price must be greater than 0." in response.content.decode()
    rate = CurrencyRate.objects.get(pk="USD")
    assert (rate.znc_price, rate.enabled) == (Decimal("0.110000"), False)
    assert not AuditLog.objects.filter(action="currency_rate_set").exists()


def test_rates_admin_is_for_superusers_only(client):
    client.force_login(UserFactory(email="ops@example.com", username="ops", is_staff=True))

    assert client.get("/admin/wallet/currencyrate/USD/change/").status_code == 403
    assert client.post("/admin/wallet/currencyrate/USD/change/", {"znc_price": "1"}).status_code == 403
    assert CurrencyRate.objects.get(pk="USD").znc_price == Decimal("0.110000")


def test_payment_admin_filters_mismatches(usd_payment, api, staff):
    deliver(api, paid_event(amount_total=1, currency="usd"))

    mismatched = staff.get("/admin/wallet/payment/?status__exact=mismatch").content.decode()
    succeeded = staff.get("/admin/wallet/payment/?status__exact=succeeded").content.decode()

    assert "Amount mismatch" in mismatched
    assert all(text in mismatched for text in ("1605", "16.05", "0.107", "USD"))
    assert "1605" not in succeeded


def test_initial_rates():
    rows = {r.currency: (r.znc_price, r.enabled) for r in CurrencyRate.objects.all()}
    assert rows == {
        "RUB": (Decimal("10.000000"), True),
        "USD": (Decimal("0.110000"), False),
        "EUR": (Decimal("0.100000"), False),
    }


# --- YooKassa: the amount it reports for the payment it is asked about ----------------------------


@pytest.fixture
def yk(settings):
    """YooKassa configured (RUB routed to it, as by default), its API faked."""
    settings.PAYMENT_PROVIDER = "yookassa"
    settings.ENABLE_MOCK_PAYMENTS = False
    settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = "506751", "test_SECRET"
    settings.YOOKASSA_WEBHOOK_IPS = []
    settings.BACKEND_URL = "http://localhost:8000"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.mark.parametrize(
    ("value", "currency", "credited"),
    [("1500.00", "RUB", True), ("1499.99", "RUB", False), ("1500.00", "USD", False)],
    ids=["same", "one-kopeck-less", "other-currency"],
)
def test_yookassa_credits_only_the_amount_it_was_asked_for(yk, as_user, alice, api, value, currency, credited):
    yk.add(responses.POST, f"{YK_API}/payments", json=yk_payment(YK_ID, "pending"))
    created = as_user(alice).post(PURCHASE, {"amount_znc": "150"}, format="json")
    assert created.status_code == 201, created.content
    reported = {**yk_payment(YK_ID, "succeeded"), "amount": {"value": value, "currency": currency}}
    yk.upsert(responses.GET, f"{YK_API}/payments/{YK_ID}", json=reported)

    response = notify(api)

    assert response.status_code == 200, response.content
    payment = Payment.objects.get(pk=created.json()["id"])
    assert (payment.amount_minor, payment.currency) == (150000, "RUB")
    assert payment.status == ("succeeded" if credited else "mismatch")
    assert balance(alice) == (Decimal("150.00") if credited else 0)
    assert AuditLog.objects.filter(action="payment_mismatch").exists() is not credited
    assert_ledger_consistent()


def test_home_page_prices_follow_the_admin_set_rouble_rate(client, admin_user):
    currency_rate_set(currency="RUB", znc_price=Decimal("12.5"), enabled=True, actor=Actor(user=admin_user))

    page = client.get("/", HTTP_ACCEPT="text/html").content.decode()

    assert "1 ZNC = 12.50 RUB" in page
    assert '<td class="num">10.00</td><td class="num">125.00</td>' in page  # 12 h: 10 ZNC
