"""The /api/v1 routes of events, included by zenzefi/urls.py by name. Order matters: the first match wins."""

from events import api as events_api
from zenzefi.routing import api

urlpatterns = [
    api("webhook-endpoints", events_api.EndpointsView.as_view(), "api-webhook-endpoints"),
    api("webhook-endpoints/(?P<endpoint_id>[^/]+)", events_api.EndpointView.as_view(), "api-webhook-endpoint"),
    api(
        "webhook-endpoints/(?P<endpoint_id>[^/]+)/rotate-secret",
        events_api.RotateSecretView.as_view(),
        "api-webhook-endpoint-rotate",
    ),
    api("webhook-endpoints/(?P<endpoint_id>[^/]+)/test", events_api.TestView.as_view(), "api-webhook-endpoint-test"),
    api(
        "webhook-endpoints/(?P<endpoint_id>[^/]+)/deliveries",
        events_api.DeliveriesView.as_view(),
        "api-webhook-endpoint-deliveries",
    ),
    api(
        "webhook-endpoints/(?P<endpoint_id>[^/]+)/deliveries/(?P<delivery_id>[^/]+)/redeliver",
        events_api.RedeliverView.as_view(),
        "api-webhook-endpoint-redeliver",
    ),
]
