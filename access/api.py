"""``/api/v1/tokens``, ``/api/v1/bundles`` and ``/api/v1/admin/tokens``, compatible with the reference."""

import uuid
from decimal import Decimal

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from access import renewal, services
from access.models import AccessToken, Bundle, Scope
from access.prices import valid_durations
from access.selectors import tokens_shown, usable_tokens
from accounts.services import actor_of
from zenzefi.api import IsSuperuser, PageInput, page_schema, paginated

MONEY = {"max_digits": 12, "decimal_places": 2, "coerce_to_string": True}


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class RenewalFields(serializers.Serializer):
    """Auto-renewal as a token response shows it (TokenOutput and AdminTokenOutput)."""

    auto_renew = serializers.BooleanField(help_text="Auto-renewal switched on for this token.")
    renewals = serializers.SerializerMethodField(help_text="How many times the token was renewed.")
    next_renewal_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the next period will be charged (expires_at minus the lead time: 60 min for tokens up to "
        "24 h, 24 h for longer ones); null unless it will renew (activated, not revoked or expired, auto-renewal "
        "and the owner's master switch on).",
    )

    def get_renewals(self, token) -> int:
        count = getattr(token, "renewal_count", None)  # annotated by access.selectors.tokens_shown
        return token.renewals.count() if count is None else count


RENEWAL_FIELDS = ["auto_renew", "renewals", "next_renewal_at"]


class TokenOutput(RenewalFields, serializers.ModelSerializer):
    """The reference's TokenResponse, plus ``status``, ``revoked_at`` and the auto-renewal fields."""

    token = serializers.CharField(source="secret")
    cost_znc = serializers.DecimalField(**MONEY)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="null until the token is first used.")
    is_active = serializers.BooleanField(source="is_usable")
    status = serializers.CharField()
    gifted_by = serializers.SerializerMethodField(
        help_text="The username of who gave you this token as a gift; null for a token you bought."
    )
    gift_pending = serializers.SerializerMethodField(
        help_text="The token is offered as a gift that is not claimed yet: it cannot be used or revoked meanwhile."
    )

    class Meta:
        model = AccessToken
        fields = [
            "id",
            "token",
            "duration_hours",
            "scope",
            "cost_znc",
            "created_at",
            "expires_at",
            "activated_at",
            "is_active",
            "status",
            "revoked_at",
            *RENEWAL_FIELDS,
            "gifted_by",
            "gift_pending",
        ]

    def get_gifted_by(self, token) -> str | None:
        return token.gifted_by.username if token.gifted_by_id else None

    def get_gift_pending(self, token) -> bool:
        pending = getattr(token, "gift_pending", None)  # annotated by access.selectors.tokens_shown
        return services.token_gift_pending(token.pk) if pending is None else pending


class TokenPurchaseView(APIView):
    class TokenPurchaseInput(serializers.Serializer):
        duration_hours = serializers.IntegerField(min_value=1)
        scope = serializers.ChoiceField(choices=Scope.choices, default=Scope.FULL)

    @extend_schema(request=TokenPurchaseInput, responses={201: TokenOutput}, summary="Buy an access token")
    def post(self, request):
        data = self.TokenPurchaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.token_purchase(user=request.user, **data.validated_data, actor=actor_of(request))
        return Response(TokenOutput(token).data, status=status.HTTP_201_CREATED)


class MyTokensView(APIView):
    class MyTokensInput(serializers.Serializer):
        # The reference's default: a client listing "my tokens" must not show revoked ones as usable.
        active_only = serializers.BooleanField(
            default=True,
            help_text="true (default): only usable tokens (not revoked, not expired); false: all of your tokens.",
        )

    @extend_schema(parameters=[MyTokensInput], responses={200: TokenOutput(many=True)}, summary="Your tokens")
    def get(self, request):
        query = self.MyTokensInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        tokens = tokens_shown(AccessToken.objects.filter(user=request.user))
        if query.validated_data["active_only"]:
            tokens = usable_tokens(tokens)
        return Response(TokenOutput(tokens.order_by("-created_at"), many=True).data)


class RevokeOutput(serializers.Serializer):
    revoked = serializers.BooleanField()
    refund_amount = serializers.DecimalField(**MONEY)
    new_balance = serializers.DecimalField(**MONEY)
    message = serializers.CharField()


class TokenView(APIView):
    class TokenChangeInput(serializers.Serializer):
        auto_renew = serializers.BooleanField(
            help_text="Renew automatically before expiry, at the list price, while the balance stays above your "
            "reserve (see /api/v1/users/me/auto-renewal)."
        )

    def _token(self, request, token_id) -> AccessToken:
        token = tokens_shown(AccessToken.objects.filter(user=request.user, pk=_uuid(token_id))).first()
        if token is None:
            raise services.TokenNotFound("Token not found")
        return token

    @extend_schema(responses={200: TokenOutput}, summary="One of your tokens")
    def get(self, request, token_id):
        return Response(TokenOutput(self._token(request, token_id)).data)

    @extend_schema(
        request=TokenChangeInput, responses={200: TokenOutput}, summary="Switch auto-renewal of your token on or off"
    )
    def patch(self, request, token_id):
        data = self.TokenChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        token_id = _uuid(token_id)
        if token_id is None:
            raise services.TokenNotFound("Token not found")
        renewal.token_auto_renew_set(
            user=request.user, token_id=token_id, enabled=data.validated_data["auto_renew"], actor=actor_of(request)
        )
        return Response(TokenOutput(self._token(request, token_id)).data)

    @extend_schema(
        responses={200: RevokeOutput},
        summary="Revoke your token; the unused time is refunded (a gift's own time is not; a pending gift is 409)",
    )
    def delete(self, request, token_id):
        token_id = _uuid(token_id)
        if token_id is None:
            raise services.TokenNotFound()
        token, refund, balance = services.token_revoke(user=request.user, token_id=token_id, actor=actor_of(request))
        # A claimed gift's own period was paid by its sender (access.services.refund_amount): say why it is 0.
        gift = " A gift is not refundable: only renewals you paid for are." if token.gifted_by_id else ""
        return Response(
            RevokeOutput(
                {
                    "revoked": True,
                    "refund_amount": refund,
                    "new_balance": balance,
                    "message": f"Token revoked.{gift} Refund: {refund:.2f} ZNC. New balance: {balance:.2f} ZNC.",
                }
            ).data
        )


# --- Bundles --------------------------------------------------------------------------------


class BundleOutput(serializers.ModelSerializer):
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=True)
    savings = serializers.DecimalField(**MONEY)
    price_per_token = serializers.DecimalField(**MONEY)

    class Meta:
        model = Bundle
        fields = [
            "id",
            "name",
            "description",
            "name_ru",
            "description_ru",
            "token_count",
            "duration_hours",
            "scope",
            "discount_percent",
            "base_price",
            "total_price",
            "savings",
            "price_per_token",
            "is_active",
            "created_at",
            "updated_at",
        ]


class BundleInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")
    # Not in the reference: the Russian texts the portal shows; empty falls back to name/description.
    name_ru = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    description_ru = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")
    token_count = serializers.IntegerField(min_value=1, max_value=1000)
    duration_hours = serializers.ChoiceField(choices=valid_durations())
    scope = serializers.ChoiceField(choices=Scope.choices, default=Scope.FULL)
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2, min_value=0, max_value=100)
    base_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    total_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    is_active = serializers.BooleanField(default=True)

    def validate_description(self, value):
        return value or ""

    def validate_description_ru(self, value):
        return value or ""


class PublicReadMixin:
    """GET is public (no credentials needed or checked); other methods need ``write_permission`` (a superuser)."""

    write_permission = IsSuperuser

    def _reading(self) -> bool:
        # No request while the OpenAPI schema is generated.
        return getattr(self.request, "method", None) in ("GET", "HEAD", "OPTIONS")

    def get_authenticators(self):
        return [] if self._reading() else super().get_authenticators()

    def get_permissions(self):
        return [AllowAny()] if self._reading() else [self.write_permission()]


class BundlesView(PublicReadMixin, APIView):
    class BundlesInput(serializers.Serializer):
        active_only = serializers.BooleanField(default=True)

    @extend_schema(
        parameters=[BundlesInput],
        responses={200: inline_serializer("BundleList", {"items": BundleOutput(many=True)})},
        summary="Bundles on sale, cheapest first",
        operation_id="api_v1_bundles_list",
    )
    def get(self, request):
        query = self.BundlesInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        bundles = Bundle.objects.order_by("total_price", "name")
        if query.validated_data["active_only"]:
            bundles = bundles.filter(is_active=True)
        return Response({"items": BundleOutput(bundles, many=True).data})

    @extend_schema(request=BundleInput, responses={201: BundleOutput}, summary="Create a bundle (superuser)")
    def post(self, request):
        data = BundleInput(data=request.data)
        data.is_valid(raise_exception=True)
        bundle = services.bundle_save(bundle=None, changes=data.validated_data, actor=actor_of(request))
        return Response(BundleOutput(bundle).data, status=status.HTTP_201_CREATED)


class BundleView(PublicReadMixin, APIView):
    def _bundle(self, bundle_id, *, active_only: bool) -> Bundle:
        bundles = Bundle.objects.filter(is_active=True) if active_only else Bundle.objects.all()
        bundle = bundles.filter(pk=_uuid(bundle_id)).first()
        if bundle is None:
            raise services.BundleNotFound() if active_only else services.NotFound("Bundle not found")
        return bundle

    @extend_schema(responses={200: BundleOutput}, summary="One bundle")
    def get(self, request, bundle_id):
        return Response(BundleOutput(self._bundle(bundle_id, active_only=True)).data)

    @extend_schema(request=BundleInput(partial=True), responses={200: BundleOutput}, summary="Change a bundle")
    def patch(self, request, bundle_id):
        bundle = self._bundle(bundle_id, active_only=False)
        # As the reference: a null field means "leave unchanged".
        data = BundleInput(data={k: v for k, v in request.data.items() if v is not None}, partial=True)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k in data.initial_data}
        bundle = services.bundle_save(bundle=bundle, changes=changes, actor=actor_of(request))
        return Response(BundleOutput(bundle).data)

    @extend_schema(responses={204: None}, summary="Take a bundle off sale (soft delete)")
    def delete(self, request, bundle_id):
        services.bundle_deactivate(bundle=self._bundle(bundle_id, active_only=False), actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BundlePurchaseView(APIView):
    class BundlePurchaseOutput(serializers.Serializer):
        bundle_name = serializers.CharField()
        tokens_generated = serializers.IntegerField()
        cost_znc = serializers.DecimalField(**MONEY)
        new_balance = serializers.DecimalField(**MONEY)
        tokens = TokenOutput(many=True)

    @extend_schema(request=None, responses={200: BundlePurchaseOutput}, summary="Buy a bundle")
    def post(self, request, bundle_id):
        bundle, tokens, entry = services.bundle_purchase(
            user=request.user, bundle_id=_uuid(bundle_id), actor=actor_of(request)
        )
        # Read back annotated (renewal count, pending gift): one query, not two per token of a large bundle.
        shown = tokens_shown(AccessToken.objects.filter(pk__in=[t.pk for t in tokens])).in_bulk()
        tokens = [shown[t.pk] for t in tokens]
        return Response(
            self.BundlePurchaseOutput(
                {
                    "bundle_name": bundle.name,
                    "tokens_generated": len(tokens),
                    "cost_znc": bundle.total_price,
                    "new_balance": entry.balance_after,
                    "tokens": tokens,
                }
            ).data
        )


# --- Admin -----------------------------------------------------------------------------------


class AdminTokenOutput(RenewalFields, serializers.ModelSerializer):
    token = serializers.SerializerMethodField()
    token_prefix = serializers.CharField(source="secret_prefix")
    cost_znc = serializers.DecimalField(**MONEY)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="null until the token is first used.")
    is_active = serializers.BooleanField(source="is_usable")
    status = serializers.CharField()
    user_email = serializers.CharField(source="user.email")
    user_username = serializers.CharField(source="user.username")

    class Meta:
        model = AccessToken
        fields = [
            "id",
            "user_id",
            "token",
            "token_prefix",
            "duration_hours",
            "scope",
            "created_at",
            "activated_at",
            "is_active",
            "status",
            "revoked_at",
            "expires_at",
            "cost_znc",
            "user_email",
            "user_username",
            *RENEWAL_FIELDS,
        ]

    def get_token(self, token) -> str:
        return f"{token.secret_prefix}…"


class AdminTokensView(APIView):
    permission_classes = [IsSuperuser]

    class AdminTokensInput(PageInput):
        default_limit = 50
        user_id = serializers.UUIDField(required=False)
        active_only = serializers.BooleanField(default=True)

    @extend_schema(parameters=[AdminTokensInput], responses={200: page_schema(AdminTokenOutput)}, summary="All tokens")
    def get(self, request):
        query = self.AdminTokensInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit, offset = query.page()
        tokens = tokens_shown(AccessToken.objects.all())
        if user_id := query.validated_data.get("user_id"):
            tokens = tokens.filter(user_id=user_id)
        if query.validated_data["active_only"]:
            tokens = usable_tokens(tokens)
        return paginated(tokens.order_by("-created_at"), AdminTokenOutput, limit=limit, offset=offset)


class AdminTokenView(APIView):
    permission_classes = [IsSuperuser]

    @extend_schema(
        responses={
            200: inline_serializer(
                "ForceRevokeResult",
                {
                    "revoked": serializers.BooleanField(),
                    "token_id": serializers.UUIDField(),
                    "message": serializers.CharField(),
                },
            )
        },
        summary="Force-revoke any token (no refund)",
    )
    def delete(self, request, token_id):
        token_id = _uuid(token_id)
        if token_id is None:
            raise services.NotFound("Token not found")
        token = services.token_force_revoke(token_id=token_id, actor=actor_of(request))
        return Response(
            {
                "revoked": True,
                "token_id": str(token.pk),
                "message": f"Token {token.pk} revoked successfully (no refund issued)",
            }
        )


# --- Auto-renewal settings -------------------------------------------------------------------------


class AutoRenewalView(APIView):
    class AutoRenewalSettings(serializers.Serializer):
        enabled = serializers.BooleanField(
            source="auto_renew_enabled", help_text="Master switch: off stops the renewal of all your tokens."
        )
        min_balance = serializers.DecimalField(
            **MONEY,
            min_value=Decimal("0"),
            source="renew_min_balance",
            help_text="Reserve, ZNC: a renewal runs only if the balance after it stays at least this (≥ 0, 2 places).",
        )

    @extend_schema(responses={200: AutoRenewalSettings}, summary="Your auto-renewal settings")
    def get(self, request):
        return Response(self.AutoRenewalSettings(request.user).data)

    @extend_schema(
        request=AutoRenewalSettings, responses={200: AutoRenewalSettings}, summary="Change your auto-renewal settings"
    )
    def put(self, request):
        data = self.AutoRenewalSettings(data=request.data)
        data.is_valid(raise_exception=True)
        user = renewal.auto_renewal_settings_set(
            user=request.user,
            enabled=data.validated_data["auto_renew_enabled"],
            min_balance=data.validated_data["renew_min_balance"],
            actor=actor_of(request),
        )
        return Response(self.AutoRenewalSettings(user).data)
