"""``/api/v1/users/me/tier``: the caller's API tier, and the self-serve upgrade to Premium and back."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from access import tiers
from accounts.services import actor_of


class TierOutput(serializers.Serializer):
    tier = serializers.ChoiceField(
        choices=["free", "premium", "enterprise"], help_text="The tier the API limit follows."
    )
    limit_per_minute = serializers.IntegerField(
        allow_null=True, help_text="API requests per minute; null for an unlimited enterprise tier."
    )
    paid_until = serializers.DateTimeField(
        allow_null=True, help_text="Premium: the end of the paid period; null for other tiers."
    )
    renews = serializers.BooleanField(
        help_text="Premium: the next period is charged automatically; false means back to free at paid_until."
    )


class TierInput(serializers.Serializer):
    tier = serializers.ChoiceField(
        choices=["premium", "free", "enterprise"],
        help_text='"premium" upgrades at once (charged PREMIUM_PRICE_ZNC, 10.00 by default, per 30 days); '
        '"free" goes back at the end of the paid period, without a refund. "enterprise" is set by an administrator.',
    )


class TierView(APIView):
    @extend_schema(responses={200: TierOutput}, summary="Your API tier and limit")
    def get(self, request):
        return Response(TierOutput(tiers.tier_state(user=request.user)).data)

    @extend_schema(
        request=TierInput,
        responses={200: TierOutput},
        summary="Upgrade to Premium (402 without funds), or switch back to Free at the end of the period",
    )
    def put(self, request):
        data = TierInput(data=request.data)
        data.is_valid(raise_exception=True)
        state = tiers.tier_set(user=request.user, tier=data.validated_data["tier"], actor=actor_of(request))
        return Response(TierOutput(state).data)
