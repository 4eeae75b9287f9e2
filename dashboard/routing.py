from django.urls import path

from dashboard.consumers import DashboardConsumer, ViolationFeedConsumer

websocket_urlpatterns = [
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
    path("ws/violations/", ViolationFeedConsumer.as_asgi()),
]
