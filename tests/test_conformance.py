"""Every exchange of the session with Slack, Jira and Okta, checked against the vendors' published specs.

The sandbox records each call the hooks made and what the stand-in answered (``sandbox/exchanges.py``);
this module runs after every other test of the session (``tests/conftest.py`` orders it last) and
checks them all with :mod:`tests.conformance`: the operation exists in the spec and is not deprecated,
its required parameters are there, and the answer validates against the documented schema. The
operations validated per system are printed at the end of the run.
"""

from __future__ import annotations

import pytest

from sandbox.exchanges import read_file
from tests.conformance import CHECKED, Allowed, Checked, Conformance

SLACK_METADATA = ("message metadata postdates the 2020 Slack spec: chat.postMessage's `metadata` argument and "
                  "the messages' `metadata` field (https://api.slack.com/methods/chat.postMessage#arg_metadata, "
                  "https://api.slack.com/metadata/using)")
ALLOWLIST = (
    Allowed("slack", "*", r"^answer (messages/\d+|message)(/metadata)?: .*'metadata' was unexpected|"
            r"^answer (messages/\d+|message): Additional properties are not allowed \('metadata' was unexpected\)",
            SLACK_METADATA),
    Allowed("slack", r"(GET|POST) /files\.(getUploadURLExternal|completeUploadExternal)", r"^no such operation",
            "files.getUploadURLExternal and files.completeUploadExternal "
            "(2024, the replacement of files.upload) postdate the spec "
            "(https://api.slack.com/methods/files.getUploadURLExternal)"),
    Allowed("slack", "GET /conversations.history", r"^answer messages: \[\] is too short",
            "the spec's minItems: 1 on messages is wrong: a channel with nothing in the window answers an "
            "empty list (https://api.slack.com/methods/conversations.history)"),
    Allowed("slack", "*", r"^answer error: '(ratelimited|thread_not_found|invalid_cursor)' is not one of",
            "the spec's per-method error lists are incomplete: 'ratelimited' comes from every method "
            "(https://api.slack.com/apis/rate-limits), 'thread_not_found' is on chat.postMessage's page and "
            "'invalid_cursor' on conversations.list's (https://api.slack.com/methods/chat.postMessage#errors)"),
    Allowed("slack", "*", r"^answer message/blocks: .* is not of type 'object'",
            "the spec types a message's blocks as an object; Slack answers the array of blocks that was posted "
            "(https://api.slack.com/reference/block-kit/blocks)"),
    Allowed("okta", "GET /api/v1/apps/{appId}/users", r"^answer \d+/externalId: None is not of type 'string'",
            "Okta answers externalId: null for an assignment of an app without provisioning (Okta's own example "
            "of List all application users, https://developer.okta.com/docs/api/openapi/okta-management/"
            "management/tag/ApplicationUsers/); the spec does not mark it nullable"),
    Allowed("jira", r"GET /rest/api/3/search", r"^operation is deprecated",
            "the Server/Data Center mode: Jira DC still serves /rest/api/2/search "
            "(https://docs.atlassian.com/software/jira/docs/api/REST/9.12.0/#api/2/search); "
            "the hook uses it only when serverInfo says Server/DC, never on Cloud"),
    Allowed("jira", "POST /rest/api/3/search", r"^operation is deprecated",
            "as GET /search: only in the Server/Data Center mode, and the Cloud mode's 410 is checked"),
)

# What the hooks call of each system (hooks/channels.py, hooks/trackers.py through atlassian-python-api,
# hooks/okta.py); the session must have validated each of them.
CALLED_BY_HOOKS = {
    "slack": {"POST /chat.postMessage", "POST /chat.update", "GET /conversations.history",
              "GET /conversations.replies", "GET /conversations.list", "POST /conversations.open",
              "GET /users.list", "GET /users.lookupByEmail"},
    "jira": {"GET /rest/api/3/serverInfo", "POST /rest/api/3/search/jql", "GET /rest/api/3/search",
             "POST /rest/api/3/issue", "GET /rest/api/3/issue/{issueIdOrKey}",
             "GET /rest/api/3/issue/{issueIdOrKey}/comment", "POST /rest/api/3/issue/{issueIdOrKey}/comment",
             "GET /rest/api/3/issue/{issueIdOrKey}/transitions", "POST /rest/api/3/issue/{issueIdOrKey}/transitions",
             "POST /rest/api/3/issue/{issueIdOrKey}/attachments", "POST /rest/api/3/issueLink"},
    "okta": {"GET /api/v1/users", "GET /api/v1/users/{id}", "GET /api/v1/users/{id}/groups", "POST /api/v1/users",
             "POST /api/v1/users/{id}/lifecycle/activate", "POST /api/v1/users/{id}/lifecycle/deactivate",
             "GET /api/v1/groups",
             "GET /api/v1/groups/{groupId}/users", "PUT /api/v1/groups/{groupId}/users/{userId}",
             "DELETE /api/v1/groups/{groupId}/users/{userId}", "GET /api/v1/apps",
             "GET /api/v1/apps/{appId}/users"},
}


@pytest.fixture(scope="module")
def checked(sandbox, request) -> Checked:
    result = Conformance(ALLOWLIST).check(read_file(sandbox.exchanges_file))
    request.config.stash[CHECKED] = result
    return result


def whole_suite(config: pytest.Config) -> bool:
    return config.args in ([], ["tests"], ["tests/"])


def test_every_recorded_exchange_fits_the_published_spec(checked: Checked, request) -> None:
    if not checked.exchanges and not whole_suite(request.config):
        pytest.skip("no test of this run talked to Slack, Jira or Okta; run it with them, or make test")
    assert checked.exchanges, "no exchange with Slack, Jira or Okta was recorded this session"
    assert not checked.findings, f"{len(checked.findings)} deviation(s) from the published specs:\n" + "\n".join(
        str(f) for f in checked.findings[:40])


def test_every_operation_the_hooks_call_was_validated(checked: Checked, request) -> None:
    if not whole_suite(request.config):
        pytest.skip("coverage of every hook operation needs the whole suite (make test); this run chose tests")
    missing = {system: sorted(names - checked.validated.get(system, set()))
               for system, names in CALLED_BY_HOOKS.items()}
    assert not any(missing.values()), f"operations the hooks call that no test exercised: {missing}"
