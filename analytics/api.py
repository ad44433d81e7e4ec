"""``/api/v1/analytics/usage``: the caller's own usage over a rolling period (see analytics.usage)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from access.services import TokenNotFound
from analytics.usage import PERIODS, own_token, usage_of


class UsagePointOutput(serializers.Serializer):
    t = serializers.DateTimeField(help_text="Start of the hour (period=day) or of the UTC day.")
    requests = serializers.IntegerField()
    bytes = serializers.IntegerField(help_text="Bytes in plus bytes out.")
    sessions = serializers.IntegerField(help_text="Device sessions started in this hour or day.")


class UsageByTokenOutput(serializers.Serializer):
    token_id = serializers.UUIDField()
    prefix = serializers.CharField(help_text="The first characters of the token, as the portal shows it.")
    requests = serializers.IntegerField()
    bytes = serializers.IntegerField()
    sessions = serializers.IntegerField()


class UsageOutput(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(PERIODS))
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()
    total_requests = serializers.IntegerField()
    total_bytes_transferred = serializers.IntegerField()
    total_sessions = serializers.IntegerField(help_text="Device sessions started in the period.")
    active_sessions = serializers.IntegerField(help_text="Device sessions open now.")
    active_tokens = serializers.IntegerField(help_text="Tokens in use now (activated, not expired, not revoked).")
    avg_session_duration_minutes = serializers.FloatField(
        help_text="Average time from start to last activity of the sessions started in the period."
    )
    series = UsagePointOutput(many=True, help_text="One point per hour (day) or per UTC day (week, month).")
    by_token = UsageByTokenOutput(many=True)


class UsageView(APIView):
    class UsageInput(serializers.Serializer):
        period = serializers.ChoiceField(
            choices=list(PERIODS),
            default="week",
            help_text="Rolling period: day (last 24 h, per hour), week (7 UTC days) or month (30 UTC days).",
        )
        token_id = serializers.CharField(required=False, help_text="Only this token of yours (404 otherwise).")

    @extend_schema(
        parameters=[UsageInput],
        responses={200: UsageOutput},
        summary="Your usage: requests, traffic and sessions over a rolling period",
        description="Figures are at most about 10 seconds old (the proxy flushes its counters every 10 s).",
    )
    def get(self, request):
        query = self.UsageInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        token = None
        if "token_id" in query.validated_data:
            token = own_token(user=request.user, token_id=query.validated_data["token_id"])
            if token is None:
                raise TokenNotFound("Token not found")
        usage = usage_of(user=request.user, period=query.validated_data["period"], token=token)
        return Response(UsageOutput(usage).data)
