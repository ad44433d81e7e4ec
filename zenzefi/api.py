"""Small pieces shared by the API modules of every app."""

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response


class IsSuperuser(BasePermission):
    message = "Superuser permissions required"

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)


# The database's OFFSET is a 64-bit integer; a bound well inside it keeps a hostile offset a 400, not a 500.
MAX_OFFSET = 2**31 - 1


class PageInput(serializers.Serializer):
    """``limit``/``offset`` as the reference names them; ``skip`` accepted for ``offset``."""

    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False)
    skip = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False)

    default_limit = 10

    def page(self) -> tuple[int, int]:
        data = self.validated_data
        offset = data.get("offset", data.get("skip", 0))
        return data.get("limit", self.default_limit), offset


def page_schema(serializer_class) -> serializers.Serializer:
    """The OpenAPI shape of what ``paginated`` answers, for ``extend_schema(responses=...)``."""
    name = serializer_class.__name__.removesuffix("Output")
    return inline_serializer(
        f"{name}Page",
        {
            "items": serializer_class(many=True),
            "total": serializers.IntegerField(),
            "limit": serializers.IntegerField(),
            "offset": serializers.IntegerField(),
        },
    )


def paginated(queryset, serializer_class, *, limit: int, offset: int, context=None) -> Response:
    total = queryset.count()
    items = serializer_class(queryset[offset : offset + limit], many=True, context=context or {}).data
    return Response({"items": items, "total": total, "limit": limit, "offset": offset})
