"""``/api/v1/currency``, ``/api/v1/webhooks`` and the admin's user endpoints, as the reference."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import UserOutput
from accounts.models import AuditLog, User
from accounts.services import actor_of
from wallet import currencies, services
from wallet.errors import PaymentNotFound
from wallet.models import Payment, Transaction
from wallet.providers import get_provider
from wallet.providers.signing import parse_signed_webhook
from zenzefi.api import IsSuperuser, PageInput, page_schema, paginated

MONEY = {"max_digits": 12, "decimal_places": 2, "coerce_to_string": True}


def _amount_field(**kwargs):
    return serializers.DecimalField(max_digits=12, decimal_places=2, **kwargs)


class BalanceView(APIView):
    class BalanceOutput(serializers.Serializer):
        balance = serializers.DecimalField(**MONEY)
        currency = serializers.CharField()

    @extend_schema(responses={200: BalanceOutput}, summary="Current ZNC balance")
    def get(self, request):
        balance = User.objects.values_list("balance", flat=True).get(pk=request.user.pk)
        return Response(self.BalanceOutput({"balance": balance, "currency": "ZNC"}).data)


class TransactionOutput(serializers.ModelSerializer):
    transaction_type = serializers.CharField(source="kind")

    class Meta:
        model = Transaction
        fields = ["id", "amount", "transaction_type", "description", "payment_id", "balance_after", "created_at"]


class TransactionsView(APIView):
    class TransactionsInput(PageInput):
        transaction_type = serializers.ChoiceField(choices=Transaction.Kind.values, required=False)

    @extend_schema(
        parameters=[TransactionsInput],
        responses={200: page_schema(TransactionOutput)},
        summary="Ledger rows, newest first",
    )
    def get(self, request):
        query = self.TransactionsInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit, offset = query.page()
        rows = Transaction.objects.filter(user=request.user).order_by("-created_at", "-seq")
        if kind := query.validated_data.get("transaction_type"):
            rows = rows.filter(kind=kind)
        return paginated(rows, TransactionOutput, limit=limit, offset=offset)


class AmountInput(serializers.Serializer):
    """``amount`` or ``amount_znc`` (the reference spells it both ways)."""

    amount = _amount_field(required=False)
    amount_znc = _amount_field(required=False)

    def validate(self, attrs):
        amount = attrs.get("amount_znc", attrs.get("amount"))
        if amount is None:
            raise serializers.ValidationError({"amount": ["This field is required."]})
        if amount <= 0:
            raise serializers.ValidationError({"amount": ["Amount must be greater than 0."]})
        attrs["value"] = amount
        return attrs


class MockPurchaseOutput(serializers.Serializer):
    success = serializers.BooleanField()
    amount = serializers.DecimalField(**MONEY)
    new_balance = serializers.DecimalField(**MONEY)
    message = serializers.CharField()
    transaction_id = serializers.UUIDField()
    payment_id = serializers.CharField()


class MockPurchaseView(APIView):
    @extend_schema(
        request=AmountInput,
        responses={201: MockPurchaseOutput},
        summary="Add ZNC at once (only with ENABLE_MOCK_PAYMENTS)",
    )
    def post(self, request):
        if not settings.ENABLE_MOCK_PAYMENTS:
            raise Http404
        data = AmountInput(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.mock_deposit(user=request.user, amount=data.validated_data["value"], actor=actor_of(request))
        return Response(
            {
                "success": True,
                "amount": f"{entry.amount:.2f}",
                "new_balance": f"{entry.balance_after:.2f}",
                "message": f"Successfully added {entry.amount:.2f} ZNC to your balance",
                "transaction_id": str(entry.id),
                "payment_id": entry.payment_id,
            },
            status=status.HTTP_201_CREATED,
        )


class PaymentOutput(serializers.ModelSerializer):
    payment_id = serializers.SerializerMethodField()
    payment_url = serializers.CharField(source="confirmation_url")
    # What is paid, in ``currency``. ``amount_rub`` stays for RUB payments (the reference's clients read it).
    amount = serializers.DecimalField(source="amount_money", max_digits=14, decimal_places=2, coerce_to_string=True)
    amount_rub = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = [
            "id",
            "payment_id",
            "payment_url",
            "amount_znc",
            "amount_rub",
            "amount",
            "currency",
            "provider",
            "status",
            "created_at",
        ]

    def get_payment_id(self, payment) -> str:
        return payment.provider_payment_id or str(payment.pk)

    @extend_schema_field(serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True))
    def get_amount_rub(self, payment) -> str | None:
        return f"{payment.amount_money:.2f}" if payment.currency == "RUB" else None


def _price_text(price: Decimal) -> str:
    """A ZNC price with at least two decimals and no trailing zeros beyond them: "10.00", "0.107"."""
    text = f"{price.normalize():f}"
    whole, _dot, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


class RatesView(APIView):
    """What 1 ZNC costs in each currency a top-up can be paid in now. Public."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class PresetOutput(serializers.Serializer):
        amount_znc = serializers.DecimalField(**MONEY)
        amount = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)

    @extend_schema(
        responses={
            200: inline_serializer(
                "CurrencyRates",
                {
                    "items": inline_serializer(
                        "CurrencyRate",
                        {
                            "currency": serializers.CharField(),
                            "znc_price": serializers.CharField(),
                            "presets": inline_serializer(
                                "CurrencyPreset",
                                {
                                    "amount_znc": serializers.DecimalField(**MONEY),
                                    "amount": serializers.DecimalField(
                                        max_digits=14, decimal_places=2, coerce_to_string=True
                                    ),
                                },
                                many=True,
                            ),
                        },
                        many=True,
                    )
                },
            )
        },
        summary="Top-up currencies available now, the price of 1 ZNC in each and the preset amounts",
    )
    def get(self, request):
        items = [
            {
                "currency": rate.currency,
                "znc_price": _price_text(rate.znc_price),
                "presets": self.PresetOutput(currencies.presets(rate), many=True).data,
            }
            for rate in currencies.available()
        ]
        return Response({"items": items})


class PurchaseView(APIView):
    class PurchaseInput(AmountInput):
        return_url = serializers.CharField(required=False, allow_blank=True, max_length=1024)
        # Checked by the service against the enabled, routed currencies (400 naming them). Not the user's
        # preferred_currency: the reference's clients send no currency and pay in RUB.
        currency = serializers.CharField(required=False, default="RUB", max_length=8)

    @extend_schema(request=PurchaseInput, responses={201: PaymentOutput}, summary="Start a top-up at the provider")
    def post(self, request):
        data = self.PurchaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        payment = services.payment_create(
            user=request.user,
            amount_znc=data.validated_data["value"],
            return_url=data.validated_data.get("return_url"),
            actor=actor_of(request),
            currency=data.validated_data["currency"],
        )
        return Response(PaymentOutput(payment).data, status=status.HTTP_201_CREATED)


class PaymentDetailView(APIView):
    @extend_schema(responses={200: PaymentOutput}, summary="One of your payments")
    def get(self, request, payment_id):
        payment = Payment.objects.filter(user=request.user, pk=_uuid_or_none(payment_id)).first()
        if payment is None:
            raise PaymentNotFound()
        return Response(PaymentOutput(payment).data)


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class WebhookView(APIView):
    """A provider's notification. Verified by the provider; applied once per payment."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    provider_name: str | None = None  # None: the generic signed webhook

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "WebhookResult", {"received": serializers.BooleanField(), "processed": serializers.BooleanField()}
            )
        },
        summary="Payment provider notification",
    )
    def post(self, request):
        if self.provider_name:
            event = get_provider(self.provider_name).parse_webhook(request)
        else:
            event = parse_signed_webhook(request)
        processed = services.webhook_apply(event=event, provider=self.provider_name, actor=actor_of(request))
        return Response({"received": True, "processed": processed})


class YooKassaWebhookView(WebhookView):
    provider_name = "yookassa"


class StripeWebhookView(WebhookView):
    provider_name = "stripe"


class MockPaymentView(APIView):
    """The reference's ``GET /webhooks/mock-payment``: completes a pending mock payment once."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class MockPaymentQuery(serializers.Serializer):
        payment_id = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)

    @extend_schema(
        parameters=[OpenApiParameter("payment_id", str, required=True)],
        responses={
            200: inline_serializer(
                "MockPaymentResult",
                {
                    "status": serializers.CharField(),
                    "message": serializers.CharField(),
                    "payment_id": serializers.CharField(),
                },
            )
        },
        summary="Complete a mock payment",
    )
    def get(self, request):
        if not settings.ENABLE_MOCK_PAYMENTS:
            raise Http404
        query = self.MockPaymentQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        payment_id = query.validated_data["payment_id"]
        payment = Payment.objects.filter(provider="mock", provider_payment_id=payment_id).first()
        if payment is not None and services.payment_capture(
            payment_id=payment.pk, actor=actor_of(request), source="mock-payment"
        ):
            return Response(
                {
                    "status": "success",
                    "message": f"Payment {payment_id} completed successfully",
                    "payment_id": payment_id,
                }
            )
        return Response(
            {"status": "error", "message": "Payment not found or already processed", "payment_id": payment_id}
        )


# --- Admin ---------------------------------------------------------------------------------


class AdminUserOutput(UserOutput):
    """The reference's admin view of a user: the public fields, with the balance instead of the referral code."""

    currency_balance = serializers.DecimalField(source="balance", **MONEY)

    class Meta(UserOutput.Meta):
        fields = [f for f in UserOutput.Meta.fields if f != "referral_code"]
        fields.insert(fields.index("created_at"), "currency_balance")


class AdminUsersView(APIView):
    permission_classes = [IsSuperuser]

    class AdminUsersInput(PageInput):
        default_limit = 50
        search = serializers.CharField(required=False, allow_blank=True, max_length=254)
        is_active = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(parameters=[AdminUsersInput], responses={200: page_schema(AdminUserOutput)}, summary="Users")
    def get(self, request):
        query = self.AdminUsersInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit, offset = query.page()
        users = User.objects.order_by("-created_at")
        if search := query.validated_data.get("search"):
            users = users.filter(Q(email__icontains=search) | Q(username__icontains=search))
        if query.validated_data.get("is_active") is not None:
            users = users.filter(is_active=query.validated_data["is_active"])
        return paginated(users, AdminUserOutput, limit=limit, offset=offset)


class AdminUserView(APIView):
    permission_classes = [IsSuperuser]

    class AdminUserInput(serializers.Serializer):
        is_active = serializers.BooleanField(required=False, allow_null=True)
        is_superuser = serializers.BooleanField(required=False, allow_null=True)
        currency_balance = _amount_field(required=False, allow_null=True)
        reason = serializers.CharField(required=False, allow_blank=True, max_length=200)

    @extend_schema(request=AdminUserInput, responses={200: AdminUserOutput}, summary="Change a user")
    def patch(self, request, user_id):
        user = User.objects.filter(pk=_uuid_or_none(user_id)).first()
        if user is None:
            return Response({"detail": "User not found"}, status=404)
        data = self.AdminUserInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.admin_user_update(
            user=user,
            actor=actor_of(request),
            **{k: v for k, v in data.validated_data.items() if v is not None},
        )
        return Response(AdminUserOutput(user).data)


class AuditLogOutput(serializers.ModelSerializer):
    # null for what no user did (activation, scheduled tasks).
    user_email = serializers.CharField(source="user.email", default=None, allow_null=True)
    user_username = serializers.CharField(source="user.username", default=None, allow_null=True)

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "user_id",
            "action",
            "resource_type",
            "resource_id",
            "details",
            "ip_address",
            "user_agent",
            "created_at",
            "user_email",
            "user_username",
        ]


class AdminAuditLogsView(APIView):
    permission_classes = [IsSuperuser]

    class AuditLogsInput(PageInput):
        default_limit = 50
        user_id = serializers.UUIDField(required=False)
        action = serializers.CharField(required=False, max_length=64)
        resource_type = serializers.CharField(required=False, max_length=64)

    @extend_schema(parameters=[AuditLogsInput], responses={200: page_schema(AuditLogOutput)}, summary="Audit log")
    def get(self, request):
        query = self.AuditLogsInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit, offset = query.page()
        rows = AuditLog.objects.select_related("user").order_by("-created_at")
        for field in ("user_id", "action", "resource_type"):
            if (value := query.validated_data.get(field)) is not None:
                rows = rows.filter(**{field: value})
        return paginated(rows, AuditLogOutput, limit=limit, offset=offset)
