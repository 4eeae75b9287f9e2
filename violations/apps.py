from django.apps import AppConfig


class ViolationsConfig(AppConfig):
    name = "violations"
    verbose_name = "Safety violations"

    def ready(self) -> None:
        from violations import checks  # noqa: F401 (registers the system checks)
