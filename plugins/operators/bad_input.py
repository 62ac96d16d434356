"""One way for an operator to fail on bad input: at once, without retries, naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prep_support.form_input import BadInput


@contextmanager
def failing_on_bad_input(*also: type[Exception]) -> Iterator[None]:
    """Turn a :class:`~prep_support.form_input.BadInput` (or one of ``also``) into AirflowFailException.

    A retry cannot fix what a person typed, so the task fails once, before anything was sent, with
    the message that names the field; anything else (a tracker down) stays a normal, retried error.
    """
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except (BadInput, *also) as error:
        raise AirflowFailException(str(error)) from error
