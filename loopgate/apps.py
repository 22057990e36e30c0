from django.apps import AppConfig


class LoopgateConfig(AppConfig):
    name = "loopgate"
    verbose_name = "Loopgate"
