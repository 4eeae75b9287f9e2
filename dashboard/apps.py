from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        from dashboard.socket_guard import close_session_sockets

        user_logged_out.connect(close_session_sockets, dispatch_uid="dashboard.close_sockets")
