"""``/api/v1/notifications`` and ``/api/v1/users/me/notification-preferences``."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import kinds, selectors, services
from notifications.models import Kind, Notification
from zenzefi.api import PageInput


class NotificationOutput(serializers.ModelSerializer):
    title = serializers.SerializerMethodField()
    body = serializers.SerializerMethodField()
    read = serializers.BooleanField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "created_at", "read"]

    def get_title(self, row) -> str:
        return kinds.text(row.kind, row.data).title

    def get_body(self, row) -> str:
        return kinds.text(row.kind, row.data).body


class ListInput(PageInput):
    unread_only = serializers.BooleanField(required=False, default=False)

    default_limit = 20


ListOutput = inline_serializer(
    "NotificationPage",
    {
        "items": NotificationOutput(many=True),
        "total": serializers.IntegerField(),
        "unread": serializers.IntegerField(),
        "limit": serializers.IntegerField(),
        "offset": serializers.IntegerField(),
    },
)

PREFERENCES_HELP = f'{{kind: {{"email": bool}}}} for kinds: {", ".join(Kind.values)}; kinds left out keep theirs.'


class NotificationsView(APIView):
    @extend_schema(parameters=[ListInput], responses={200: ListOutput}, summary="Your notifications, newest first")
    def get(self, request):
        data = ListInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        limit, offset = data.page()
        rows = selectors.notifications_of(request.user, unread_only=data.validated_data["unread_only"])
        return Response(
            {
                "items": NotificationOutput(rows[offset : offset + limit], many=True).data,
                "total": rows.count(),
                "unread": selectors.unread_count(request.user),
                "limit": limit,
                "offset": offset,
            }
        )


class NotificationReadView(APIView):
    @extend_schema(request=None, responses={200: NotificationOutput}, summary="Mark one notification read")
    def post(self, request, notification_id):
        row = services.notification_read(user=request.user, notification_id=notification_id)
        return Response(NotificationOutput(row).data)


class NotificationsReadAllView(APIView):
    @extend_schema(
        request=None,
        responses={200: inline_serializer("NotificationsReadAll", {"marked": serializers.IntegerField()})},
        summary="Mark all your notifications read",
    )
    def post(self, request):
        return Response({"marked": services.notifications_read_all(user=request.user)})


class NotificationPreference(serializers.Serializer):
    email = serializers.BooleanField()


PreferencesSchema = inline_serializer(
    "NotificationPreferences", {kind: NotificationPreference(required=False) for kind in Kind.values}
)


def _email_choices(payload) -> dict[str, bool]:
    if not isinstance(payload, dict):
        raise ValidationError({"detail": 'Expected an object {kind: {"email": bool}}'})
    unknown = sorted(set(payload) - set(Kind.values))
    if unknown:
        raise ValidationError({"detail": f"Unknown notification kind(s): {', '.join(map(str, unknown))}"})
    choices = {}
    for kind, value in payload.items():
        if not isinstance(value, dict) or not isinstance(value.get("email"), bool) or set(value) - {"email"}:
            raise ValidationError({"detail": f'{kind}: expected {{"email": true|false}}'})
        choices[kind] = value["email"]
    return choices


class PreferencesView(APIView):
    @extend_schema(responses={200: PreferencesSchema}, summary="Your e-mail settings per notification kind")
    def get(self, request):
        return Response(selectors.preferences_of(request.user))

    @extend_schema(
        request=PreferencesSchema,
        responses={200: PreferencesSchema},
        summary="Change your e-mail settings per notification kind",
        description=PREFERENCES_HELP,
    )
    def put(self, request):
        services.preferences_set(user=request.user, email=_email_choices(request.data))
        return Response(selectors.preferences_of(request.user))
