"""The route class of the systems whose every API call is authenticated and whose errors have their own shape.

A route of a subclass checks the caller (:meth:`SystemRoute.authenticate`) before its handler runs,
except on the sandbox's own control paths, and answers the system's error type with that error's
``response()``, so a handler only raises and each system speaks its documented error body.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.routing import APIRoute


class SystemRoute(APIRoute):
    """Subclasses name their ``error`` type and say how a request is authenticated."""

    error: ClassVar[type[Exception]]

    def needs_auth(self) -> bool:
        """Whether this route is the system's API; the sandbox's ``/_sandbox/`` controls are open."""
        return "/_sandbox/" not in self.path

    def authenticate(self, request: Request) -> None:
        """Raise ``error`` (401) unless the request carries the system's credentials."""
        raise NotImplementedError

    def answer(self, error: Any) -> Response:
        return error.response()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needs_auth = self.needs_auth()

        async def handle(request: Request) -> Response:
            try:
                if needs_auth:
                    self.authenticate(request)
                return await handler(request)
            except self.error as error:
                return self.answer(error)

        return handle
