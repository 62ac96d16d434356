"""Talking to the sandbox's own test endpoints (state, faults) from tests."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def call(base_url: str, method: str, path: str, payload: Any = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"{base_url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = answer.read()
    return json.loads(body) if body else None
