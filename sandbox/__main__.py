"""Run the sandbox: ``python -m sandbox --port 0 --tcp-port 0 --smtp-port 0 --state-dir DIR --ready-file FILE``.

Once the HTTP, TCP and SMTP ports all listen, the ready file receives (atomically) the JSON
``{"http_port", "tcp_port", "smtp_port", "base_url", "estate_db", "pid"}``; it is removed on exit.
SIGTERM and SIGINT shut the server down gracefully with exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from sandbox.app import create_app
from sandbox.protocol import SandboxHttpProtocol
from sandbox.smtp import SmtpServer

STARTUP_FAILURE = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address for the HTTP and TCP ports")
    parser.add_argument("--port", type=int, default=0, help="HTTP port, 0 for a free one")
    parser.add_argument("--tcp-port", type=int, default=0, help="estate TCP port, 0 for a free one")
    parser.add_argument("--smtp-port", type=int, default=0, help="SMTP port, 0 for a free one")
    parser.add_argument("--state-dir", type=Path, required=True, help="where the sandbox keeps its files")
    parser.add_argument("--ready-file", type=Path, help="JSON file written once the ports listen")
    return parser.parse_args(argv)


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn to listen on, so port 0 can be resolved before serving."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def write_ready_file(path: Path, info: dict[str, object]) -> None:
    """Write the JSON under a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


async def serve(server: uvicorn.Server, sock: socket.socket, ready_file: Path | None,
                smtp: SmtpServer | None = None, extra_sockets: tuple[socket.socket, ...] = ()) -> int:
    """Serve until told to stop, announcing readiness once every port listens."""
    if smtp is not None:
        try:
            await smtp.start()
        except OSError as exc:
            print(f"sandbox: cannot listen for SMTP on {smtp.host}:{smtp.port}: {exc}", file=sys.stderr)
            return STARTUP_FAILURE
    sockets = [sock, *extra_sockets]
    serving = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    try:
        if server.started and ready_file is not None:
            host, port = sock.getsockname()[:2]
            url_host = f"[{host}]" if ":" in host else host
            estate = server.config.app.state.estate
            write_ready_file(
                ready_file,
                {
                    "http_port": port,
                    "tcp_port": estate.tcp.port,
                    "smtp_port": smtp.port if smtp is not None else None,
                    "base_url": f"http://{url_host}:{port}",
                    "estate_db": str(estate.db_path),
                    "pid": os.getpid(),
                },
            )
        await serving
    finally:
        if smtp is not None:
            await smtp.stop()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    return 0 if server.started else STARTUP_FAILURE


def main(argv: list[str] | None = None) -> int:
    """Start the sandbox and block until SIGTERM/SIGINT."""
    args = parse_args(argv)
    state_dir = args.state_dir.resolve()
    ready_file = args.ready_file.resolve() if args.ready_file else None
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return STARTUP_FAILURE
    app = create_app(state_dir, tcp_host=args.host, tcp_port=args.tcp_port)
    # Microsoft Graph redirects downloads to another host: here, a second port of the same app.
    download_sock = bind_socket(args.host, 0)
    download_host, download_port = download_sock.getsockname()[:2]
    app.state.graph.download_base_url = f"http://{f'[{download_host}]' if ':' in download_host else download_host}" \
                                        f":{download_port}"
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=SandboxHttpProtocol,
        lifespan="on",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)

    def stop(signum: int, frame: FrameType | None) -> None:
        # Until uvicorn installs its own handlers (and again after it restores these and
        # re-raises the signal it caught), a signal just asks the server to stop.
        server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    with sock, download_sock, asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        return runner.run(serve(server, sock, ready_file, SmtpServer(app.state.smtp, args.host, args.smtp_port),
                                (download_sock,)))


if __name__ == "__main__":
    sys.exit(main())
