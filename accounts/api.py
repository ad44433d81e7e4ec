"""Auth and user endpoints, compatible with the reference's ``/api/v1/auth`` and ``/api/v1/users``."""

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import User
from accounts.selectors import referral_summary
from accounts.tokens import issued_before_password_change, jwt_pair
from accounts.validators import username_normalise, validate_username_characters
from zenzefi.errors import DomainError
from zenzefi.net import request_ip


class UserOutput(serializers.ModelSerializer):
    full_name = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "username",
            "full_name",
            "is_active",
            "is_superuser",
            "referral_code",
            "created_at",
            "updated_at",
        ]

    def get_full_name(self, user) -> str | None:
        return user.full_name or None


class UsernameField(serializers.CharField):
    """A username as the portal's form reads it: NFKC-normalised, stripped, no invisible characters."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(validate_username_characters)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        # As Django's UsernameField: an overlong value is refused by max_length without being normalised.
        return value if self.max_length is not None and len(value) > self.max_length else username_normalise(value)


class JWTPairOutput(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    refresh_token = serializers.CharField()


class InvalidRefreshToken(DomainError):
    status_code = 401
    default_detail = "Invalid or expired refresh token"


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")


class PublicAuthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    rate_limit_scope = "auth"


class RegisterView(PublicAuthView):
    class RegisterInput(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        username = UsernameField(min_length=3, max_length=50)
        password = serializers.CharField(min_length=8, max_length=128, write_only=True, trim_whitespace=False)
        full_name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)

    class RegisterQuery(serializers.Serializer):
        # Fields, not raw reads, so that text the database cannot hold (NUL) is a 400.
        ref = serializers.CharField(
            required=False, allow_blank=True, max_length=64, help_text="Referral code of the user who invited you."
        )
        referral_code = serializers.CharField(
            required=False, allow_blank=True, max_length=64, help_text="Alias of `ref`."
        )

    @extend_schema(
        request=RegisterInput, responses={201: UserOutput}, parameters=[RegisterQuery], summary="Register a new user"
    )
    def post(self, request):
        query = self.RegisterQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = self.RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(
            **data.validated_data,
            referral_code=query.validated_data.get("ref") or query.validated_data.get("referral_code"),
            ip=request_ip(request),
            user_agent=_user_agent(request),
        )
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicAuthView):
    class LoginInput(serializers.Serializer):
        email = serializers.CharField(required=False, max_length=254, help_text="E-mail or username.")
        username = serializers.CharField(required=False, max_length=254, help_text="Accepted in place of email.")
        password = serializers.CharField(max_length=1024, trim_whitespace=False)

        def validate(self, attrs):
            if not (attrs.get("email") or attrs.get("username")):
                raise serializers.ValidationError({"email": ["Provide email or username."]})
            return attrs

    @extend_schema(request=LoginInput, responses={200: JWTPairOutput}, summary="Log in and get a JWT")
    def post(self, request):
        data = self.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.auth_login(
            identifier=data.validated_data.get("email") or data.validated_data["username"],
            password=data.validated_data["password"],
            request=request._request,
            ip=request_ip(request),
            user_agent=_user_agent(request),
        )
        return Response(jwt_pair(user))


class RefreshView(PublicAuthView):
    class RefreshInput(serializers.Serializer):
        refresh_token = serializers.CharField(required=False)
        refresh = serializers.CharField(required=False, help_text="Alias of refresh_token.")

        def validate(self, attrs):
            if not (attrs.get("refresh_token") or attrs.get("refresh")):
                raise serializers.ValidationError({"refresh_token": ["This field is required."]})
            return attrs

    @extend_schema(
        request=RefreshInput, responses={200: JWTPairOutput}, summary="Exchange a refresh token for a new pair"
    )
    def post(self, request):
        data = self.RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        raw = data.validated_data.get("refresh_token") or data.validated_data["refresh"]
        try:
            refresh = RefreshToken(raw)
            user = User.objects.filter(pk=uuid.UUID(str(refresh.get("sub")))).first()
        except (TokenError, ValueError, TypeError):
            raise InvalidRefreshToken() from None
        if user is None or not user.is_active or issued_before_password_change(refresh.payload, user):
            raise InvalidRefreshToken()
        return Response(jwt_pair(user))


# The top-up currencies, as wallet.currencies.CURRENCIES (accounts may not import wallet; a test keeps them equal).
PREFERRED_CURRENCIES = ("RUB", "USD", "EUR")


class MeOutput(UserOutput):
    class Meta(UserOutput.Meta):
        fields = [*UserOutput.Meta.fields, "preferred_currency"]


class MeView(APIView):
    class MeInput(serializers.Serializer):
        full_name = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
        password = serializers.CharField(
            min_length=8, max_length=128, required=False, allow_null=True, write_only=True, trim_whitespace=False
        )
        preferred_currency = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=8,
            help_text="ISO 4217: one of " + ", ".join(PREFERRED_CURRENCIES),
        )

    @extend_schema(responses={200: MeOutput}, summary="The current user")
    def get(self, request):
        return Response(MeOutput(request.user).data)

    @extend_schema(
        request=MeInput,
        responses={200: MeOutput},
        summary="Change full name, password (a new password signs out every other session) or preferred currency",
    )
    def patch(self, request):
        data = self.MeInput(data=request.data)
        data.is_valid(raise_exception=True)
        currency = data.validated_data.get("preferred_currency")
        if currency is not None and currency.strip().upper() not in PREFERRED_CURRENCIES:
            # Checked before anything is written, so a bad currency changes nothing else either.
            raise DomainError(
                f"preferred_currency must be one of {', '.join(PREFERRED_CURRENCIES)}", field="preferred_currency"
            )
        user = services.user_update(
            user=request.user,
            full_name=data.validated_data.get("full_name"),
            password=data.validated_data.get("password"),
            ip=request_ip(request),
        )
        if currency is not None:
            services.preferred_currency_set(user=user, currency=currency, ip=request_ip(request))
        return Response(MeOutput(user).data)


class ReferralsView(APIView):
    class ReferredUserOutput(serializers.Serializer):
        id = serializers.UUIDField()
        username = serializers.CharField()
        email = serializers.EmailField()
        created_at = serializers.DateTimeField()
        has_made_qualifying_purchase = serializers.BooleanField()

    class ReferralsOutput(serializers.Serializer):
        referral_code = serializers.CharField()
        total_referrals = serializers.IntegerField()
        qualifying_referrals = serializers.IntegerField()
        total_bonus_earned = serializers.FloatField()
        referral_link = serializers.CharField()
        referred_users = serializers.ListField()

    @extend_schema(responses={200: ReferralsOutput}, summary="Your referral code, link and referred users")
    def get(self, request):
        return Response(referral_summary(request.user))
