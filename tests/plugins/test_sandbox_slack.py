"""The sandbox's Slack Web API, driven through the Slack provider's own SlackHook over real HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from airflow.providers.slack.hooks.slack import SlackHook
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler

from tests.conftest import ROOT

SPEC_PATH = ROOT / "tests" / "specs" / "slack_web_openapi_v2.json"  # see tests/specs/README.md
TIMEOUT = 10
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*payments-api* is down"}}]


@pytest.fixture(autouse=True)
def _clean_slack(sandbox) -> None:
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/slack/_sandbox/messages", timeout=TIMEOUT).raise_for_status()
    yield
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())  # part of the project: a missing file is a failure, not a skip


def assert_fits_spec(spec: dict[str, Any], method: str, body: dict[str, Any]) -> None:
    """Validate an answer against the method's success schema (OpenAPI 2 schemas are JSON Schema draft 4)."""
    import jsonschema

    operation = next(iter(spec["paths"][f"/{method}"].values()))
    schema = operation["responses"]["200"]["schema"] | {"definitions": spec["definitions"]}
    jsonschema.Draft4Validator(schema).validate(body)


def assert_fits_spec_object(spec: dict[str, Any], definition: str, body: dict[str, Any]) -> None:
    """Validate an object against one of the description's definitions (e.g. objs_file)."""
    import jsonschema

    schema = spec["definitions"][definition] | {"definitions": spec["definitions"]}
    jsonschema.Draft4Validator(schema).validate(body)


def slack_hook(**kwargs: Any) -> SlackHook:
    return SlackHook(slack_conn_id="slack_api_default", **kwargs)


def posted(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/slack/_sandbox/messages", timeout=TIMEOUT).json()["messages"]


def journal(sandbox) -> list[dict[str, Any]]:
    """Every call the sandbox's Slack received this session (the journal is never cleared)."""
    return requests.get(f"{sandbox.base_url}/sandbox/requests/slack", timeout=TIMEOUT).json()["requests"]


def statuses(calls: list[dict[str, Any]], method: str) -> list[Any]:
    return [call["status"] for call in calls if call["path"] == f"/slack/api/{method}"]


def inject(sandbox, **plan: Any) -> None:
    requests.put(f"{sandbox.base_url}/sandbox/faults/slack", json=plan, timeout=TIMEOUT).raise_for_status()


def test_post_reply_in_thread_and_update(sandbox, spec) -> None:
    client = slack_hook().client
    mark = len(journal(sandbox))
    parent = client.chat_postMessage(channel="#payments-support", text="payments-api is down", blocks=BLOCKS)
    assert parent["channel"] == "C0PAYSUPRT"
    assert parent["message"]["blocks"] == BLOCKS
    assert_fits_spec(spec, "chat.postMessage", parent.data)

    reply = client.chat_postMessage(channel=parent["channel"], text="still down", thread_ts=parent["ts"],
                                    reply_broadcast=True)
    assert reply["message"]["thread_ts"] == parent["ts"]
    assert_fits_spec(spec, "chat.postMessage", reply.data)

    updated = client.chat_update(channel="payments-support", ts=parent["ts"], text="payments-api recovered")
    assert (updated["ts"], updated["text"]) == (parent["ts"], "payments-api recovered")
    assert updated["message"]["blocks"] == BLOCKS  # chat.update keeps blocks it is not given

    thread = client.conversations_replies(channel="C0PAYSUPRT", ts=parent["ts"])
    assert [m["text"] for m in thread["messages"]] == ["payments-api recovered", "still down"]
    assert thread["messages"][0]["reply_count"] == 1
    assert_fits_spec(spec, "conversations.replies", thread.data)

    first, second = posted(sandbox)
    assert (first["channel"], first["ts"], first["thread_ts"], first["text"]) == (
        "C0PAYSUPRT", parent["ts"], None, "payments-api recovered"
    )
    assert [(e["previous_text"], e["previous_blocks"]) for e in first["edits"]] == [("payments-api is down", BLOCKS)]
    assert (second["thread_ts"], second["reply_broadcast"], second["edits"]) == (parent["ts"], True, [])
    assert statuses(journal(sandbox)[mark:], "chat.postMessage") == [200, 200]


def test_update_answer_fits_spec(sandbox, spec) -> None:
    client = slack_hook().client
    message = client.chat_postMessage(channel="#prep-support", text="draft")
    updated = client.chat_update(channel=message["channel"], ts=message["ts"], text="final")
    assert_fits_spec(spec, "chat.update", updated.data)


@pytest.mark.parametrize("channel", ["#web-support", "web-support", "C0WEBSUPRT"], ids=["hash-name", "name", "id"])
def test_channel_by_name_or_id_is_stored_by_id(sandbox, channel: str) -> None:
    response = slack_hook().client.chat_postMessage(channel=channel, text="portal slow")
    assert response["channel"] == "C0WEBSUPRT"
    assert [(m["channel"], m["channel_name"]) for m in posted(sandbox)] == [("C0WEBSUPRT", "web-support")]


def test_form_encoded_call_with_blocks_as_json_text(sandbox) -> None:
    response = slack_hook().call("chat.postMessage", data={"channel": "#data-support", "text": "row counts off",
                                                           "blocks": json.dumps(BLOCKS)})
    assert response["channel"] == "C0DATSUPRT"
    assert posted(sandbox)[0]["blocks"] == BLOCKS


def test_list_channels_across_pages(sandbox, spec) -> None:
    hook = slack_hook()
    # Iterating a SlackResponse follows next_cursor; it reuses one object, so keep each page's data.
    pages = [page.data for page in hook.client.conversations_list(limit=3, types="public_channel,private_channel")]
    names = [channel["name"] for page in pages for channel in page["channels"]]
    assert len(pages) == 4 and len(names) == len(set(names)) == 11
    assert {"payments-support", "commerce-support", "web-support", "data-support", "supply-support",
            "identity-support", "prep-support", "prep-support-oncall"} <= set(names)
    assert [bool(page["response_metadata"]["next_cursor"]) for page in pages] == [True, True, True, False]
    assert_fits_spec(spec, "conversations.list", pages[0])
    public = hook.client.conversations_list()["channels"]
    assert "prep-support-oncall" not in {channel["name"] for channel in public}
    assert hook.get_channel_id("identity-support") == "C0IAMSUPRT"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda c: c.chat_postMessage(channel="#no-such-channel", text="x"), "channel_not_found",
                     id="unknown-channel"),
        pytest.param(lambda c: c.chat_postMessage(channel="#prep-support", text="x", thread_ts="1700000000.000001"),
                     "thread_not_found", id="unknown-thread"),
        pytest.param(lambda c: c.chat_update(channel="#prep-support", ts="1700000000.000001", text="x"),
                     "message_not_found", id="unknown-message"),
        pytest.param(lambda c: c.chat_postMessage(channel="#prep-support"), "no_text", id="no-text",
                     marks=pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")),
        pytest.param(lambda c: c.conversations_list(cursor="not-a-cursor"), "invalid_cursor", id="bad-cursor"),
    ],
)
def test_errors_are_ok_false(sandbox, call, error: str) -> None:
    with pytest.raises(SlackApiError) as raised:
        call(slack_hook().client)
    assert (raised.value.response.status_code, raised.value.response["error"]) == (200, error)
    assert posted(sandbox) == []


def test_invalid_token(sandbox, monkeypatch: pytest.MonkeyPatch, spec) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_SLACK_API_DEFAULT"]) | {"password": "xoxb-revoked"}
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_REVOKED", json.dumps(conn))
    hook = SlackHook(slack_conn_id="slack_revoked")
    with pytest.raises(SlackApiError) as raised:
        hook.client.chat_postMessage(channel="#prep-support", text="x")
    assert raised.value.response.data == {"ok": False, "error": "invalid_auth"}
    assert hook.test_connection()[0] is False
    ok, answer = slack_hook().test_connection()
    assert ok
    assert_fits_spec(spec, "auth.test", json.loads(answer))


def test_rate_limits_are_waited_out_by_the_retry_handler(sandbox) -> None:
    inject(sandbox, status=429, every=2, retry_after_s=1)
    client = slack_hook(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)]).client
    mark = len(journal(sandbox))
    started = time.monotonic()
    for text in ("one", "two", "three"):
        client.chat_postMessage(channel="#incidents", text=text)
    assert time.monotonic() - started >= 2  # two answers said Retry-After: 1
    assert [m["text"] for m in posted(sandbox)] == ["one", "two", "three"]
    assert statuses(journal(sandbox)[mark:], "chat.postMessage") == [200, 429, 200, 429, 200]


def test_without_a_retry_handler_a_rate_limit_surfaces(sandbox) -> None:
    # SlackHook's default WebClient only retries connection errors: callers must pass a rate-limit handler.
    inject(sandbox, status=429, every=1, times=1, retry_after_s=1)
    with pytest.raises(SlackApiError) as raised:
        slack_hook().client.chat_postMessage(channel="#incidents", text="lost")
    response = raised.value.response
    assert (response.status_code, response["error"], response.headers["Retry-After"]) == (429, "ratelimited", "1")
    assert posted(sandbox) == []


def test_channel_lookup_waits_out_a_rate_limit(sandbox) -> None:
    inject(sandbox, status=429, every=1, times=1, retry_after_s=1)
    mark = len(journal(sandbox))
    assert slack_hook().get_channel_id("supply-support") == "C0SUPSUPRT"
    assert statuses(journal(sandbox)[mark:], "conversations.list") == [429, 200]


def shared_files(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/slack/_sandbox/files", timeout=TIMEOUT).json()["files"]


def test_send_file_v2_uploads_in_three_steps_and_shares_with_a_message(sandbox, spec) -> None:
    hook = slack_hook()
    content = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (900).to_bytes(4, "big") + (500).to_bytes(4, "big")
    mark = len(journal(sandbox))
    answer = hook.send_file_v2(channel_id="C0PAYSUPRT", initial_comment="Weekly trend: *99.50 %*",
                               file_uploads={"content": content, "filename": "trend.png", "title": "Payments API"})
    calls = [call["path"] for call in journal(sandbox)[mark:]]
    assert calls == ["/slack/api/files.getUploadURLExternal", "/slack/api/files.completeUploadExternal"]

    (shared,) = answer["files"]
    assert shared["id"].startswith("F") and answer["file"] == shared
    assert (shared["name"], shared["title"], shared["size"], shared["mimetype"], shared["filetype"]) == (
        "trend.png", "Payments API", len(content), "image/png", "png")
    assert (shared["original_w"], shared["original_h"], shared["channels"]) == (900, 500, ["C0PAYSUPRT"])
    (share,) = shared["shares"]["public"]["C0PAYSUPRT"]
    assert_fits_spec_object(spec, "objs_file", {k: v for k, v in shared.items() if k != "shares"})

    (message,) = posted(sandbox)
    assert (message["channel_name"], message["ts"], message["text"]) == (
        "payments-support", share["ts"], "Weekly trend: *99.50 %*")
    assert [f["id"] for f in message["files"]] == [shared["id"]]
    (state,) = shared_files(sandbox)
    assert {k: state[k] for k in ("name", "size", "title", "channel_names", "initial_comment", "original_w")} == {
        "name": "trend.png", "size": len(content), "title": "Payments API", "channel_names": ["payments-support"],
        "initial_comment": "Weekly trend: *99.50 %*", "original_w": 900}
    body = requests.get(f"{sandbox.base_url}/slack/_sandbox/files/{shared['id']}/content", timeout=TIMEOUT)
    assert (body.content, body.headers["content-type"]) == (content, "image/png")


def test_an_upload_is_completed_once_and_only_after_its_bytes_arrived(sandbox) -> None:
    client = slack_hook().client
    ticket = client.files_getUploadURLExternal(filename="notes.txt", length=5)
    assert ticket["upload_url"].startswith(f"{sandbox.base_url}/slack/upload/v1/")
    files = [{"id": ticket["file_id"], "title": "Notes"}]
    with pytest.raises(SlackApiError) as early:
        client.files_completeUploadExternal(files=files, channel_id="C0PREPSUPT")
    assert early.value.response["error"] == "file_not_found"

    # The upload URL takes a multipart form as well as raw bytes (https://api.slack.com/methods/files.getUploadURLExternal).
    uploaded = requests.post(ticket["upload_url"], files={"file": ("notes.txt", b"hello")}, timeout=TIMEOUT)
    assert (uploaded.status_code, uploaded.text) == (200, "OK - 5")
    thread = client.chat_postMessage(channel="#prep-support", text="notes follow")
    done = client.files_completeUploadExternal(files=files, channel_id="C0PREPSUPT", thread_ts=thread["ts"])
    assert done["files"][0]["title"] == "Notes"
    replies = client.conversations_replies(channel="C0PREPSUPT", ts=thread["ts"])["messages"]
    assert len(replies) == 2 and replies[1]["thread_ts"] == thread["ts"]

    with pytest.raises(SlackApiError) as again:
        client.files_completeUploadExternal(files=files, channel_id="C0PREPSUPT")
    assert again.value.response["error"] == "file_not_found"
    assert requests.post(ticket["upload_url"], data=b"late", timeout=TIMEOUT).status_code == 404
    assert [f["name"] for f in shared_files(sandbox)] == ["notes.txt"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda c: c.files_getUploadURLExternal(filename="a.png", length=0), "missing_argument",
                     id="empty-file"),
        pytest.param(lambda c: c.files_getUploadURLExternal(filename="a.png", length=1, alt_txt="x" * 1001),
                     "alt_txt_too_large", id="long-alt-text"),
        pytest.param(lambda c: c.files_completeUploadExternal(files=[{"id": "F0NOSUCHFILE"}]), "file_not_found",
                     id="unknown-file"),
        pytest.param(lambda c: c.api_call("files.completeUploadExternal", params={"files": "not json"}),
                     "invalid_arguments", id="files-not-json"),
    ],
)
def test_upload_errors_are_ok_false(sandbox, call, error: str) -> None:
    with pytest.raises(SlackApiError) as raised:
        call(slack_hook().client)
    assert (raised.value.response.status_code, raised.value.response["error"]) == (200, error)
    assert shared_files(sandbox) == []


def test_sharing_to_an_unknown_channel_is_refused(sandbox) -> None:
    client = slack_hook().client
    ticket = client.files_getUploadURLExternal(filename="a.txt", length=1)
    requests.post(ticket["upload_url"], data=b"a", timeout=TIMEOUT).raise_for_status()
    with pytest.raises(SlackApiError) as raised:
        client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id="C0NOSUCHCHAN")
    assert raised.value.response["error"] == "channel_not_found"
    assert posted(sandbox) == [] and shared_files(sandbox) == []


# --- people and direct messages ------------------------------------------------------------------


def user_id(client, name: str) -> str:
    return next(user["id"] for page in client.users_list(limit=50) for user in page["members"] if user["name"] == name)


def test_users_are_listed_across_pages_as_the_directory_has_them(sandbox, spec) -> None:
    from sandbox import directory_seed

    client = slack_hook().client
    pages = [page.data for page in client.users_list(limit=10)]
    members = [user for page in pages for user in page["members"]]
    assert [bool(page["response_metadata"]["next_cursor"]) for page in pages] == [True] * (len(pages) - 1) + [False]
    assert len(members) == len({user["id"] for user in members}) == len(client.users_list()["members"])
    for page in pages:
        assert_fits_spec(spec, "users.list", page)
    by_name = {user["name"]: user for user in members}
    assert {"alice", "bob", "carol", "dave", "analyst", "admin"} <= set(by_name)
    for person in directory_seed.PEOPLE:  # Slack and the directory agree on who is who
        if person.employee_id not in directory_seed.NOT_JOINED:
            user = by_name[person.username]
            assert (user["profile"]["email"], user["real_name"]) == (person.email, person.name)
            assert user["deleted"] == (person.status == "terminated")
    assert "nina" not in by_name  # a joiner who has no accounts yet
    assert by_name["prep-support-bot"]["is_bot"] is True


def test_a_user_is_found_by_email(sandbox, spec) -> None:
    client = slack_hook().client
    found = client.users_lookupByEmail(email="Bob@example.com")
    assert (found["user"]["name"], found["user"]["profile"]["email"]) == ("bob", "bob@example.com")
    assert_fits_spec(spec, "users.lookupByEmail", found.data)


def test_a_direct_message_goes_to_the_im_opened_with_the_user(sandbox, spec) -> None:
    client = slack_hook().client
    alice = user_id(client, "alice")
    opened = client.conversations_open(users=alice)
    assert_fits_spec(spec, "conversations.open", opened.data)
    im = opened["channel"]["id"]
    assert im.startswith("D") and im != alice
    again = client.conversations_open(users=alice, return_im=True)
    assert (again["channel"]["id"], again["already_open"], again["no_op"]) == (im, True, True)
    # The whole IM object, as the spec's "Conversation IM Channel Object" describes it.
    [im_schema] = [alt for alt in spec["definitions"]["objs_conversation"]["items"] if alt.get("title", "").startswith(
        "Conversation IM Channel Object")]
    import jsonschema

    jsonschema.Draft4Validator(im_schema | {"definitions": spec["definitions"]}).validate(again["channel"])
    assert (again["channel"]["is_im"], again["channel"]["user"]) == (True, alice)

    sent = client.chat_postMessage(channel=im, text="your cases")
    assert sent["channel"] == im
    [message] = posted(sandbox)
    assert (message["is_im"], message["im_user"], message["im_user_name"], message["channel_name"]) == (
        True, alice, "alice", None)
    ims = client.conversations_list(types="im")["channels"]
    assert im in {channel["id"] for channel in ims} and all(channel["is_im"] for channel in ims)
    assert im not in {c["id"] for c in client.conversations_list(types="public_channel,private_channel")["channels"]}


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda c: c.users_lookupByEmail(email="nobody@example.com"), "users_not_found",
                     id="unknown-email"),
        pytest.param(lambda c: c.users_list(cursor="not-a-cursor"), "invalid_cursor", id="bad-cursor"),
        pytest.param(lambda c: c.conversations_open(users="U0NOBODY01"), "user_not_found", id="unknown-user"),
        pytest.param(lambda c: c.conversations_open(users=user_id(c, "lena")), "user_disabled", id="deactivated"),
        pytest.param(lambda c: c.api_call("conversations.open", data={"return_im": "true"}),
                     "users_list_not_supplied", id="no-users"),
        pytest.param(lambda c: c.conversations_open(channel="C0PREPSUPT"), "method_not_supported_for_channel_type",
                     id="a-channel"),
        pytest.param(lambda c: c.chat_postMessage(channel="D0NOSUCHIM1", text="x"), "channel_not_found",
                     id="im-never-opened"),
    ],
)
def test_people_errors_are_ok_false(sandbox, call, error: str) -> None:
    with pytest.raises(SlackApiError) as raised:
        call(slack_hook().client)
    assert (raised.value.response.status_code, raised.value.response["error"]) == (200, error)
    assert posted(sandbox) == []
