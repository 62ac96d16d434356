"""uvicorn's httptools protocol, plus a way for a route to drop its connection unanswered.

ASGI has no message for "close the connection without a response": an app that raises gets
a 500 from the server. To simulate a crashed or unreachable backend, the sandbox runs
uvicorn with :class:`SandboxHttpProtocol`, which exposes the connection's ``abort`` in the
request scope under the ``sandbox.connection`` extension.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

EXTENSION = "sandbox.connection"


class SandboxHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose request scopes carry the ``sandbox.connection`` extension."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {EXTENSION: {"abort": self.transport.abort}}


async def drop_connection(scope: dict[str, Any], receive: Any) -> None:
    """Close the client's connection without sending a byte, then wait until the server notices.

    Raises RuntimeError when the server is not running :class:`SandboxHttpProtocol`.
    """
    connection = scope.get("extensions", {}).get(EXTENSION)
    if connection is None:
        raise RuntimeError("dropping a connection needs the sandbox's HTTP protocol (python -m sandbox)")
    connection["abort"]()
    while (await receive())["type"] != "http.disconnect":
        pass
