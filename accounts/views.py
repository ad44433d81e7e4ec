from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import FormView, TemplateView

from accounts import services
from accounts.forms import LoginForm, ProfileForm, RegisterForm
from accounts.selectors import referral_summary
from zenzefi.errors import DomainError
from zenzefi.net import request_ip

BACKEND = "accounts.backends.EmailOrUsernameBackend"


class RegisterView(FormView):
    template_name = "accounts/register.html"
    form_class = RegisterForm
    rate_limit_scope = "auth"

    def get_initial(self):
        code = self.request.GET.get("ref") or self.request.GET.get("referral_code") or ""
        return {"referral_code": code.strip().upper()}

    def next_url(self) -> str:
        """Where to go after registering (e.g. back to a gift's claim page): only a path of this site."""
        target = self.request.POST.get("next") or self.request.GET.get("next") or ""
        safe = url_has_allowed_host_and_scheme(
            target, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()
        )
        return target if safe else ""

    def get_context_data(self, **kwargs):
        return super().get_context_data(next=self.next_url(), **kwargs)

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            user = services.user_register(
                email=data["email"],
                username=data["username"],
                password=data["password1"],
                full_name=data["full_name"],
                referral_code=data["referral_code"] or None,
                ip=request_ip(self.request),
                user_agent=self.request.META.get("HTTP_USER_AGENT", ""),
            )
        except DomainError as exc:
            fields = {"password": "password1"}
            # Service messages are English (the API's); pages show them translated.
            form.add_error(fields.get(exc.field, exc.field), gettext(exc.detail))
            return self.form_invalid(form)
        login(self.request, user, backend=BACKEND)
        messages.success(self.request, _("Welcome, %(name)s! Your account is ready.") % {"name": user.username})
        return redirect(self.next_url() or "accounts:profile")


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True
    rate_limit_scope = "auth"


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("You have been logged out."))
        return response


class ProfileView(LoginRequiredMixin, FormView):
    template_name = "accounts/profile.html"
    form_class = ProfileForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "instance": self.request.user}

    def get_context_data(self, **kwargs):
        user = self.request.user
        referral_link = self.request.build_absolute_uri(reverse("accounts:register") + f"?ref={user.referral_code}")
        return super().get_context_data(referral_link=referral_link, **kwargs)

    def form_valid(self, form):
        services.user_update(
            user=self.request.user, full_name=form.cleaned_data["full_name"], ip=request_ip(self.request)
        )
        messages.success(self.request, _("Profile saved."))
        return redirect("accounts:profile")


class ReferralsView(LoginRequiredMixin, TemplateView):
    template_name = "accounts/referrals.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        summary = referral_summary(user)
        # The link as the user reached us (same as the profile page), not BACKEND_URL.
        summary["referral_link"] = self.request.build_absolute_uri(
            reverse("accounts:register") + f"?ref={user.referral_code}"
        )
        return super().get_context_data(
            summary=summary,
            bonus_percent=settings.REFERRAL_BONUS_PERCENT,
            min_purchase=settings.REFERRAL_MIN_PURCHASE,
            **kwargs,
        )


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.audit_record(
            actor=self.request.user, action="user_password_change", obj=self.request.user, ip=request_ip(self.request)
        )
        messages.success(self.request, _("Your password has been changed."))
        return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")
    rate_limit_scope = "auth"


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:login")
    rate_limit_scope = "auth"

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password has been set. You can log in now."))
        return response
