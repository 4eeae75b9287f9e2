from django.urls import path

from dashboard.consumers import ViolationFeedConsumer

websocket_urlpatterns = [
    path("ws/violations/", ViolationFeedConsumer.as_asgi()),
]
