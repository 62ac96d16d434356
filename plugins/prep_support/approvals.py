"""Who asked, and who may approve: the requester from authentication, and four eyes on every approval.

The requester of a run is the user Airflow authenticated when the run was triggered (the run's
``triggering_user_name``: the UI session's or the API token's user, or the creator of a backfill).
Runs nobody triggered (a schedule, an asset event) are the system's. A name typed into a form is
never who asked; at most it says on whose behalf.

Four eyes: whoever asked for a change and whoever the change is about may not approve it. The
approvers of a human-in-the-loop step are the configured candidates minus those people; when
nobody is left the run stops before asking anyone, naming the setting that lists the approvers.
The answer is checked again against Airflow's record of who responded (an admin can answer any
step), so a change is only applied on an answer by a third person.

Pure functions, no Airflow import: user_lifecycle, access_review, uat_cycle and the coming
configuration-change and remedy workflows share them.
"""

from __future__ import annotations

from collections.abc import Iterable

SYSTEM = "system"  # the requester of scheduled and asset-triggered runs


class FourEyesError(ValueError):
    """An approval would be given by the requester or the subject, or nobody else may give it."""


def requester(triggering_user: str | None) -> str:
    """The authenticated user who triggered a run, or :data:`SYSTEM` for runs without one."""
    name = (triggering_user or "").strip()
    return name or SYSTEM


def same_person(one: str | None, other: str | None) -> bool:
    """Whether two usernames name the same person: identities compare without case (``Erin`` is ``erin``)."""
    return bool(one) and bool(other) and one.strip().lower() == other.strip().lower()


def _people(names: Iterable[str | None]) -> dict[str, str]:
    """Lower-cased name -> name, for the people among ``names`` (the system is nobody)."""
    return {name.lower(): name for name in names if name and name != SYSTEM}


def approvers(candidates: Iterable[str | None], *, requester: str, subjects: Iterable[str | None] = (),
              setting: str) -> list[dict[str, str]]:
    """``assigned_users`` of an approval: the candidates in order, once each, without the requester or a subject.

    :param setting: where the candidates are configured (file and key), named when nobody is left.
    """
    excluded = _people([requester, *subjects])
    chosen = [name for name in dict.fromkeys(c.strip() for c in candidates if c and c.strip())
              if name.lower() not in excluded]
    if not chosen:
        who = " and ".join(f"{role} {name}" for role, name in
                           (("the requester", requester if requester != SYSTEM else None),
                            ("the subject", ", ".join(_people(subjects).values()) or None)) if name)
        raise FourEyesError(f"nobody may approve this: every approver is {who or 'excluded'} "
                            f"(four eyes); add another approver to {setting}")
    return [{"id": name, "name": name} for name in chosen]


def check_answer(responder: str | None, *, requester: str, subjects: Iterable[str | None] = ()) -> str:
    """The responder of an approval, refused if they are the requester or a subject (FourEyesError)."""
    if not responder:
        raise FourEyesError("the approval has no responder: nothing is applied without a recorded answer")
    excluded = _people([requester, *subjects])
    if responder.lower() in excluded:
        role = "requester" if responder.lower() == requester.lower() else "subject"
        raise FourEyesError(f"{responder} answered their own approval as its {role}: four eyes need someone else")
    return responder
