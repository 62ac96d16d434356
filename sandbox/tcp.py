"""A TCP port that can stop and resume listening, for TCP reachability checks."""

from __future__ import annotations

import asyncio
import contextlib


class TcpListener:
    """Greets every connection with one line and closes it.

    ``stop()`` closes the listening socket, so connections are refused; ``start()`` listens
    again on the same port (``SO_REUSEADDR``). Port 0 picks a free port on the first start.
    """

    def __init__(self, host: str, port: int = 0, greeting: bytes = b"READY\n") -> None:
        self.host = host
        self.port = port
        self.greeting = greeting
        self._server: asyncio.Server | None = None

    @property
    def accepting(self) -> bool:
        """Whether the port is listening now."""
        return self._server is not None

    async def start(self) -> None:
        """Listen (again) on the port; a no-op when already listening."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._greet, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listening socket; a no-op when not listening."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _greet(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self.greeting)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
