"""Reading a Pub/Sub push request: the envelope `{"message": {"data": base64, ...}, "subscription"}`."""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.core.errors import ValidationFailed
from shared.core.http import ApiRequest


class PushMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: str = ""


class PushEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: PushMessage
    subscription: str = ""


def push_payload(req: ApiRequest) -> dict[str, Any]:
    envelope = req.json_body(PushEnvelope)
    try:
        data = json.loads(base64.b64decode(envelope.message.data))
    except ValueError:
        raise ValidationFailed("message data is not base64 JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("message data is not a JSON object")
    return data
