"""Loopgate: human-in-the-loop review and automation levels."""

from loopgate.celery import app as celery_app

__all__ = ("celery_app",)
