from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Plans and usage"

    def ready(self) -> None:
        from quotas import signals  # noqa: F401 - connects the receivers
