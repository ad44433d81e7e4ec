from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import User
from accounts.validators import validate_username_characters
from zenzefi.errors import RateLimited
from zenzefi.net import request_ip


class UsernameField(auth_forms.UsernameField):
    """Django's username field (NFKC, stripped) that also refuses invisible characters."""

    default_validators = [validate_username_characters]


class RegisterForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    username = UsernameField(
        label=_("Username"), min_length=3, max_length=50, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    full_name = forms.CharField(label=_("Full name"), max_length=255, required=False)
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Repeat password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    referral_code = forms.CharField(label=_("Referral code"), max_length=12, required=False)

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", _("The two passwords do not match."))
        return data


class LoginForm(AuthenticationForm):
    """Signs in through accounts.services.auth_login, so pages and API share auditing and limits."""

    username = forms.CharField(
        label=_("E-mail or username"),
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        "invalid_login": _("Incorrect e-mail/username or password."),
        "inactive": _("This account is inactive."),
        "rate_limited": _("Too many failed attempts. Try again in %(seconds)s seconds."),
    }

    def clean(self):
        identifier = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if identifier and password:
            try:
                self.user_cache = services.auth_login(
                    identifier=identifier,
                    password=password,
                    request=self.request,
                    ip=request_ip(self.request),
                    user_agent=self.request.META.get("HTTP_USER_AGENT", ""),
                )
            except services.LoginFailed:
                raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login") from None
            except RateLimited as exc:
                raise forms.ValidationError(
                    self.error_messages["rate_limited"], code="rate_limited", params={"seconds": exc.retry_after}
                ) from None
        return self.cleaned_data


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["full_name"]
