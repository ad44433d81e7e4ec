"""Read queries shared by the accounts API and pages."""

from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.urls import reverse

from accounts import services
from accounts.models import User


def referral_summary(user: User) -> dict:
    """Who ``user`` referred, which of them earned a bonus, and the bonus total (shared by API and page)."""
    bonuses = user.transactions.filter(kind="referral_bonus")
    earned_keys = set(bonuses.values_list("idempotency_key", flat=True))
    referred = [
        {
            "id": str(referee.id),
            "username": referee.username,
            "email": referee.email,
            "created_at": referee.created_at,
            "has_made_qualifying_purchase": services.referral_bonus_key(referee.id) in earned_keys,
        }
        for referee in user.referrals.order_by("-created_at")
    ]
    total = bonuses.aggregate(total=Sum("amount"))["total"] or Decimal("0")
    return {
        "referral_code": user.referral_code,
        "total_referrals": len(referred),
        "qualifying_referrals": sum(r["has_made_qualifying_purchase"] for r in referred),
        "total_bonus_earned": float(total),
        "referral_link": f"{settings.BACKEND_URL}{reverse('accounts:register')}?ref={user.referral_code}",
        "referred_users": referred,
    }
