"""The /api/v1 routes of wallet, included by zenzefi/urls.py by name. Order matters: the first match wins."""

from wallet import api as wallet_api
from zenzefi.routing import api

urlpatterns = [
    api("currency/balance", wallet_api.BalanceView.as_view(), "api-currency-balance"),
    api("currency/transactions", wallet_api.TransactionsView.as_view(), "api-currency-transactions"),
    api("currency/mock-purchase", wallet_api.MockPurchaseView.as_view(), "api-currency-mock-purchase"),
    api("currency/rates", wallet_api.RatesView.as_view(), "api-currency-rates"),
    api("currency/purchase", wallet_api.PurchaseView.as_view(), "api-currency-purchase"),
    api("currency/payments/(?P<payment_id>[^/]+)", wallet_api.PaymentDetailView.as_view(), "api-currency-payment"),
    api("webhooks/payment", wallet_api.WebhookView.as_view(), "api-webhooks-payment"),
    api("webhooks/yookassa", wallet_api.YooKassaWebhookView.as_view(), "api-webhooks-yookassa"),
    api("webhooks/stripe", wallet_api.StripeWebhookView.as_view(), "api-webhooks-stripe"),
    api("webhooks/mock-payment", wallet_api.MockPaymentView.as_view(), "api-webhooks-mock-payment"),
    api("admin/users", wallet_api.AdminUsersView.as_view(), "api-admin-users"),
    api("admin/users/(?P<user_id>[^/]+)", wallet_api.AdminUserView.as_view(), "api-admin-user"),
    api("admin/audit-logs", wallet_api.AdminAuditLogsView.as_view(), "api-admin-audit-logs"),
]
