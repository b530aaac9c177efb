"""The model registry: registered models, versions, aliases (stages as compatibility), history,
compare, rollback and webhooks.

``get_registry()`` gives the store for the configured tracking URI: the SQL store on the
embedded or shared database, or the REST store of a ``loopml server``.
"""

from __future__ import annotations

from loopml.registry._base import EVENTS, RegistryStore
from loopml.registry._entities import (
    ModelEvent,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    Stage,
    VersionComparison,
    Webhook,
    WebhookDelivery,
)
from loopml.registry._resolve import get_registry
from loopml.registry._rest import RestRegistryStore
from loopml.registry._sql import SqlRegistryStore
from loopml.registry._validation import validate_model_name, validate_text, validate_user
from loopml.registry._webhooks import sign_payload, validate_webhook_url, verify_signature

__all__ = [
    "EVENTS",
    "ModelEvent",
    "ModelVersion",
    "ModelVersionStatus",
    "RegisteredModel",
    "RegistryStore",
    "RestRegistryStore",
    "SqlRegistryStore",
    "Stage",
    "VersionComparison",
    "Webhook",
    "WebhookDelivery",
    "get_registry",
    "sign_payload",
    "validate_model_name",
    "validate_text",
    "validate_user",
    "validate_webhook_url",
    "verify_signature",
]
