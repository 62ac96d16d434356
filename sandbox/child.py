"""Ending the sandbox's child processes (the web app, slapd) without leaving one behind."""

from __future__ import annotations

import subprocess


def stop_child(process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM the child if it still runs, SIGKILL it when it has not exited after ``timeout_s``, and reap it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
