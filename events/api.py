"""``/api/v1/webhook-endpoints``: an integrator's endpoints, their secrets and delivery logs."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import actor_of
from events import registry, services
from events.models import DeliveryAttempt, WebhookEndpoint
from zenzefi.api import PageInput, page_schema, paginated


class EndpointOutput(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "enabled",
            "status",
            "disabled_reason",
            "disabled_at",
            "created_at",
            "updated_at",
        ]

    def get_status(self, endpoint) -> str:
        return "enabled" if endpoint.enabled else "disabled"


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(help_text="whsec_…; shown only in this answer.")

    class Meta(EndpointOutput.Meta):
        fields = [*EndpointOutput.Meta.fields, "secret"]


EVENTS_HELP = f'Event types, or ["*"] for all: {", ".join(sorted(registry.EVENT_TYPES))}.'


class EndpointInput(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="https URL that receives the POSTs.")
    events = serializers.ListField(child=serializers.CharField(max_length=64), max_length=50, help_text=EVENTS_HELP)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class EndpointChangeInput(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=50, required=False, help_text=EVENTS_HELP
    )
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


def _with_secret(endpoint, secret: str) -> dict:
    return {**EndpointOutput(endpoint).data, "secret": secret}


class EndpointsView(APIView):
    @extend_schema(responses={200: EndpointOutput(many=True)}, summary="Your webhook endpoints")
    def get(self, request):
        endpoints = WebhookEndpoint.objects.filter(owner=request.user).order_by("-created_at")
        return Response(EndpointOutput(endpoints, many=True).data)

    @extend_schema(
        request=EndpointInput,
        responses={201: EndpointWithSecretOutput},
        summary="Add a webhook endpoint; its signing secret is shown only in this answer",
    )
    def post(self, request):
        data = EndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(owner=request.user, **data.validated_data, actor=actor_of(request))
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)


class EndpointView(APIView):
    @extend_schema(responses={200: EndpointOutput}, summary="One of your webhook endpoints")
    def get(self, request, endpoint_id):
        endpoint = services.endpoint_owned(request.user, endpoint_id)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(request=EndpointChangeInput, responses={200: EndpointOutput}, summary="Change a webhook endpoint")
    def patch(self, request, endpoint_id):
        data = EndpointChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(
            owner=request.user,
            endpoint_id=endpoint_id,
            changes=data.validated_data,
            actor=actor_of(request),
        )
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(responses={204: None}, summary="Delete a webhook endpoint and its delivery log")
    def delete(self, request, endpoint_id):
        services.endpoint_delete(owner=request.user, endpoint_id=endpoint_id, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateSecretView(APIView):
    @extend_schema(
        request=None,
        responses={200: EndpointWithSecretOutput},
        summary="A new signing secret (shown once); the old one keeps signing alongside it for 24 hours",
    )
    def post(self, request, endpoint_id):
        endpoint, secret = services.endpoint_rotate_secret(
            owner=request.user, endpoint_id=endpoint_id, actor=actor_of(request)
        )
        return Response(_with_secret(endpoint, secret))


QueuedOutput = inline_serializer(
    "WebhookQueued",
    {
        "delivery_id": serializers.UUIDField(),
        "event_id": serializers.CharField(),
        "event_type": serializers.CharField(),
        "status": serializers.CharField(),
    },
)


class TestView(APIView):
    @extend_schema(request=None, responses={202: QueuedOutput}, summary="Send a ping event to this endpoint")
    def post(self, request, endpoint_id):
        delivery = services.endpoint_test(owner=request.user, endpoint_id=endpoint_id, actor=actor_of(request))
        body = {"delivery_id": str(delivery.pk), "event_id": delivery.event_id, "event_type": registry.PING}
        return Response({**body, "status": "pending"}, status=status.HTTP_202_ACCEPTED)


class AttemptOutput(serializers.ModelSerializer):
    event_id = serializers.CharField(source="delivery.event_id")
    event_type = serializers.CharField(source="delivery.event.type")
    delivery_id = serializers.UUIDField()

    class Meta:
        model = DeliveryAttempt
        fields = [
            "id",
            "delivery_id",
            "event_id",
            "event_type",
            "attempt",
            "trigger",
            "status",
            "response_code",
            "response_body",
            "error",
            "duration_ms",
            "created_at",
            "next_attempt_at",
        ]


class DeliveriesView(APIView):
    @extend_schema(
        parameters=[PageInput], responses={200: page_schema(AttemptOutput)}, summary="The endpoint's delivery log"
    )
    def get(self, request, endpoint_id):
        query = PageInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        endpoint = services.endpoint_owned(request.user, endpoint_id)
        attempts = (
            DeliveryAttempt.objects.filter(endpoint=endpoint)
            .select_related("delivery__event")
            .order_by("-created_at", "-attempt")
        )
        limit, offset = query.page()
        return paginated(attempts, AttemptOutput, limit=limit, offset=offset)


class RedeliverView(APIView):
    @extend_schema(
        request=None,
        responses={202: QueuedOutput},
        summary="Send a delivery's event again (same body and webhook-id); the id is the delivery's or an attempt's",
    )
    def post(self, request, endpoint_id, delivery_id):
        row = services.delivery_redeliver(
            owner=request.user,
            endpoint_id=endpoint_id,
            delivery_id=delivery_id,
            actor=actor_of(request),
        )
        event = row.delivery.event
        body = {"delivery_id": str(row.delivery_id), "event_id": event.id, "event_type": event.type}
        return Response({**body, "status": "pending"}, status=status.HTTP_202_ACCEPTED)
