"""``/api/v1/tokens/{id}/gift`` and ``/api/v1/gifts``: give an unactivated token away through a claim link.

Thin over ``access.gifts``, which holds every rule (limits, freezing, single use, no ledger row). The claim code
is in the ``claim_url`` of the answer that made the gift, and nowhere else: the database keeps only its digest.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from access import gifts, services
from access.api import PublicReadMixin, TokenOutput, _uuid
from access.models import AccessToken, Gift, GiftStatus, Scope
from access.selectors import gifts_of, tokens_shown
from accounts.services import actor_of
from zenzefi.api import PageInput, page_schema, paginated
from zenzefi.net import request_ip

STATUS_HELP = (
    "pending (waiting to be claimed), claimed, declined, cancelled (by its sender or an admin) or expired "
    "(not claimed in time; shown as soon as the claim time has passed)."
)


class GiftPublicOutput(serializers.Serializer):
    """What anyone holding the claim link sees: no token, no secret, no recipient."""

    gift_id = serializers.UUIDField(source="pk")
    status = serializers.SerializerMethodField(help_text=STATUS_HELP)
    sender_username = serializers.CharField(source="sender.username")
    duration_hours = serializers.IntegerField(source="token.duration_hours")
    scope = serializers.ChoiceField(source="token.scope", choices=Scope.choices)
    message = serializers.CharField()
    expires_at = serializers.DateTimeField(help_text="Claim by: after this the link no longer works.")

    @extend_schema_field(serializers.ChoiceField(choices=GiftStatus.choices))
    def get_status(self, gift: Gift) -> str:
        # The expiry task runs now and then; a pending gift past its time can no longer be claimed already.
        if gift.status == GiftStatus.PENDING and timezone.now() >= gift.expires_at:
            return GiftStatus.EXPIRED
        return gift.status


class GiftOutput(GiftPublicOutput):
    """A gift as its sender and its recipient see it."""

    created_at = serializers.DateTimeField()
    recipient_email = serializers.CharField(help_text="Where the sender had the link mailed; empty if nowhere.")
    recipient_username = serializers.SerializerMethodField(help_text="Who claimed or declined it; null until then.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When it stopped being pending.")
    token_id = serializers.UUIDField()

    def get_recipient_username(self, gift: Gift) -> str | None:
        return gift.recipient.username if gift.recipient_id else None


class GiftCreatedOutput(GiftOutput):
    claim_url = serializers.SerializerMethodField(
        help_text="The single-use link to hand to the recipient. Shown only in this answer: keep it."
    )

    def get_claim_url(self, gift: Gift) -> str:
        return self.context["claim_url"]


class GiftClaimOutput(GiftOutput):
    token = serializers.SerializerMethodField()

    @extend_schema_field(TokenOutput(allow_null=True, help_text="Accepted: the token, now yours. Declined: null."))
    def get_token(self, gift: Gift):
        token = self.context["token"]
        return None if token is None else TokenOutput(token).data


def _created(gift: Gift, code: str) -> Response:
    return Response(
        GiftCreatedOutput(gift, context={"claim_url": gifts.claim_url(code)}).data, status=status.HTTP_201_CREATED
    )


class GiftInput(serializers.Serializer):
    # Checked by the service (the same rules and messages as the portal's form).
    recipient_email = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default="",
        help_text="Optional: the claim link is also mailed there. Anyone with the link can claim it.",
    )
    message = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default="",
        help_text=f"Optional, at most {gifts.MESSAGE_MAX} characters; shown to whoever opens the link.",
    )


class TokenGiftView(APIView):
    @extend_schema(
        request=GiftInput,
        responses={201: GiftCreatedOutput},
        summary="Offer one of your unused tokens as a gift",
        description="The token must never have been used and not be revoked. Until the gift is claimed, declined, "
        "cancelled or expired the token is frozen: it does not work and cannot be revoked. 404 for a token that "
        "is not yours; 400 activated, revoked, already offered, too many pending gifts; 429 too many gifts a day.",
    )
    def post(self, request, token_id):
        data = GiftInput(data=request.data)
        data.is_valid(raise_exception=True)
        token_id = _uuid(token_id)
        if token_id is None:
            raise services.TokenNotFound("Token not found")
        gift, code = gifts.gift_send(
            user=request.user,
            token_id=token_id,
            recipient_email=data.validated_data["recipient_email"],
            message=data.validated_data["message"],
            actor=actor_of(request),
        )
        return _created(gift, code)


class GiftBuyView(APIView):
    class GiftBuyInput(GiftInput):
        duration_hours = serializers.IntegerField(min_value=1)
        scope = serializers.ChoiceField(choices=Scope.choices, default=Scope.FULL)

    @extend_schema(
        request=GiftBuyInput,
        responses={201: GiftCreatedOutput},
        summary="Buy a token as a gift",
        description="Debits the price (one purchase row) and offers the new token as a gift, both or neither. "
        "402 without funds.",
    )
    def post(self, request):
        data = self.GiftBuyInput(data=request.data)
        data.is_valid(raise_exception=True)
        gift, code = gifts.gift_buy(user=request.user, **data.validated_data, actor=actor_of(request))
        return _created(gift, code)


class GiftsView(APIView):
    class GiftsInput(PageInput):
        default_limit = 20
        direction = serializers.ChoiceField(
            choices=["sent", "received"],
            default="sent",
            help_text="sent (default): the gifts you offered; received: the gifts you accepted.",
        )

    @extend_schema(
        parameters=[GiftsInput],
        responses={200: page_schema(GiftOutput)},
        summary="Your gifts, newest first",
        operation_id="api_v1_gifts_list",
    )
    def get(self, request):
        query = self.GiftsInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit, offset = query.page()
        rows = gifts_of(request.user, direction=query.validated_data["direction"])
        return paginated(rows, GiftOutput, limit=limit, offset=offset)


class GiftCancelView(APIView):
    @extend_schema(
        request=None,
        responses={200: GiftOutput},
        summary="Take back a pending gift you sent",
        description="The token is yours again, unchanged. 404 for a gift you did not send; 409 if not pending.",
    )
    def post(self, request, gift_id):
        gift_id = _uuid(gift_id)
        if gift_id is None:
            raise gifts.GiftNotFound()
        return Response(GiftOutput(gifts.gift_cancel(user=request.user, gift_id=gift_id, actor=actor_of(request))).data)


class StrictBooleanField(serializers.BooleanField):
    """JSON ``true`` or ``false`` only: a choice that moves a token is not guessed from ``"no"`` or ``0``."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class GiftClaimView(PublicReadMixin, APIView):
    """The preview is public (the link is the credential); answering it needs an account."""

    write_permission = IsAuthenticated

    class GiftClaimInput(serializers.Serializer):
        accept = StrictBooleanField(help_text="true: the token becomes yours; false: it goes back to its sender.")

    def _rate_check(self, request) -> None:
        """Every lookup of a code counts per client IP, so codes cannot be guessed; 429 past the limit."""
        decision = gifts.claim_rate_check(request_ip(request))
        if decision is not None:
            request._request.rate_limit_decision = decision  # the X-RateLimit-* headers of this endpoint's limit

    @extend_schema(
        responses={200: GiftPublicOutput},
        summary="What a gift link offers (no authentication)",
        description="Any status is shown; only a pending one can be claimed. 404 for an unknown code; 429 after "
        "too many lookups from one address.",
    )
    def get(self, request, code):
        self._rate_check(request)
        return Response(GiftPublicOutput(gifts.gift_by_code(code)).data)

    @extend_schema(
        request=GiftClaimInput,
        responses={200: GiftClaimOutput},
        summary="Accept or decline a gift",
        description="Accepted, the token is yours with a new secret (in `token`); nothing is charged. 409 for a "
        "link already used, cancelled or expired; 400 for your own gift; 404 for an unknown code.",
    )
    def post(self, request, code):
        self._rate_check(request)
        data = self.GiftClaimInput(data=request.data)
        data.is_valid(raise_exception=True)
        gift = gifts.gift_claim(
            user=request.user, code=code, accept=data.validated_data["accept"], actor=actor_of(request)
        )
        token = None
        if gift.status == GiftStatus.CLAIMED:
            token = tokens_shown(AccessToken.objects.filter(pk=gift.token_id, user=request.user)).first()
        return Response(GiftClaimOutput(gift, context={"token": token}).data)
