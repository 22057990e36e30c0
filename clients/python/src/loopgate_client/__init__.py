"""A small typed client for the Loopgate API."""

from loopgate_client.client import Loopgate, LoopgateError
from loopgate_client.webhooks import verify_signature

__all__ = ["Loopgate", "LoopgateError", "verify_signature"]
