"""``/api/v1/analytics/admin/global``: the owner's business figures over a rolling period (analytics.selectors)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.selectors import PERIODS, business_figures
from zenzefi.api import IsSuperuser

MONEY = {"max_digits": 14, "decimal_places": 2, "coerce_to_string": True}


class TopupOutput(serializers.Serializer):
    currency = serializers.CharField(help_text="The currency paid (RUB, USD, EUR).")
    count = serializers.IntegerField(help_text="Succeeded payments.")
    amount = serializers.DecimalField(**MONEY, help_text="Money received, in that currency.")
    amount_znc = serializers.DecimalField(**MONEY, help_text="ZNC credited for it.")


class TopUserOutput(serializers.Serializer):
    user_id = serializers.UUIDField()
    username = serializers.CharField()
    requests = serializers.IntegerField()
    bytes = serializers.IntegerField(help_text="Bytes in plus bytes out.")


class GlobalOutput(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(PERIODS))
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()
    new_users = serializers.IntegerField()
    token_purchases = serializers.IntegerField(help_text="Access tokens bought (bundle tokens and gifts included).")
    revenue_znc = serializers.DecimalField(
        **MONEY, help_text="ZNC spent on purchases: tokens, bundles, renewals, premium tier periods."
    )
    refunds_znc = serializers.DecimalField(**MONEY, help_text="ZNC refunded (revoked tokens, returned gifts).")
    net_revenue_znc = serializers.DecimalField(**MONEY, help_text="revenue_znc minus refunds_znc.")
    referral_payouts_znc = serializers.DecimalField(**MONEY, help_text="ZNC paid as referral bonuses.")
    topups_by_currency = TopupOutput(many=True, help_text="Succeeded top-up payments in the period, per currency.")
    total_proxy_requests = serializers.IntegerField()
    active_users_now = serializers.IntegerField(help_text="Users with an open session active within the idle timeout.")
    dau = serializers.IntegerField(help_text="Distinct users with proxy requests today (UTC date).")
    mau = serializers.IntegerField(help_text="Distinct users with proxy requests in the last 30 UTC days.")
    top_users = TopUserOutput(many=True, help_text="The 10 users with the most proxy traffic in the period.")


class GlobalView(APIView):
    permission_classes = [IsSuperuser]

    class GlobalInput(serializers.Serializer):
        period = serializers.ChoiceField(
            choices=list(PERIODS),
            default="week",
            help_text="Rolling period: day (last 24 h), week (7 UTC days) or month (30 UTC days), today included.",
        )

    @extend_schema(
        parameters=[GlobalInput],
        responses={200: GlobalOutput},
        summary="Business figures (superuser): revenue, refunds, top-ups, users and proxy use over a period",
    )
    def get(self, request):
        query = self.GlobalInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(GlobalOutput(business_figures(period=query.validated_data["period"])).data)
