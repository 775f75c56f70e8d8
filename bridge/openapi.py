"""The REST API's OpenAPI 3.1 document, written by hand; the app is built from it.

Each operation names its handler (``operationId``), who may call it
(``x-access``) and its parameters and body schemas. ``operations.bind`` turns
an operation into a route that authenticates, authorizes and validates by
exactly what is written here, so the document cannot drift from the server
(and ``tests/unit/bridge/test_openapi.py`` checks both ways).

``x-access`` is one of:
- ``{"public": true}``: anyone, credentials ignored.
- ``{"roles": [...], "scope": "..."}``: a logged-in user with one of the roles
  (an empty list: any logged-in user), or an API token with the scope (no
  scope: users only; ``"*"``: any token). ``"loopback": true`` also lets in a caller without
  credentials from this machine (the old health listener's routes).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SEARCH_MAX_OFFSET", "SPEC", "operations"]

MAX_ID = 2**53 - 1  # ids stay exact in JavaScript clients
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TIME = {"type": "number", "minimum": 0, "maximum": 1e11, "description": "seconds since the epoch"}
NAME = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^\s/]+$"}
SHORT_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"}
TEXT = {"type": "string", "minLength": 1, "maxLength": 4000, "pattern": r"\S"}
IDENTITY_KINDS = ["phone", "email", "webchat", "account"]
CHANNELS = ["voice", "webchat"]
STATUSES = ["ivr", "queued", "ringing", "connected", "wrap-up", "closed", "abandoned"]
SPEAKERS = ["customer", "agent", "ivr", "system"]
# What an agent may choose; routing also shows "ringing", "busy" and "wrap-up".
AGENT_STATES = ["available", "paused", "offline"]
STAFF = ["agent", "qa", "admin"]
SEARCH_MAX_OFFSET = 10_000  # deeper pages cost the index more than anyone reads


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/E{status}"} for status in statuses}


def _path_id(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": ID}


def _query(
    name: str, schema: dict[str, Any], description: str, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _body(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema_name)}}}


_AUTHENTICATED: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
_SESSION: list[dict[str, list[str]]] = [{"session": []}]
_PUBLIC: list[dict[str, list[str]]] = []

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what went wrong"},
            "field": {"type": "string", "description": "the input at fault (dotted path)"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "description": "ok, draining, ..."}},
        "additionalProperties": True,
    },
    "IvrOutcome": {
        "type": "object",
        "description": "what the speech IVR heard and decided (ivr.outcome)",
        "additionalProperties": True,
    },
    "Identity": {
        "type": "object",
        "required": ["kind", "value"],
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": IDENTITY_KINDS},
            "value": {**SHORT_TEXT, "description": "phone numbers are normalized to E.164"},
        },
    },
    "Customer": {
        "type": "object",
        "required": ["id", "display_name", "created_at", "identities", "merged_into"],
        "properties": {
            "id": ID,
            "display_name": {"type": ["string", "null"]},
            "created_at": TIME,
            "identities": {"type": "array", "items": _ref("Identity")},
            "merged_into": _nullable(ID),
        },
    },
    "Conversation": {
        "type": "object",
        "required": ["id", "customer_id", "channel", "status", "started_at", "updated_at"],
        "properties": {
            "id": ID,
            "customer_id": ID,
            "channel": {"type": "string", "enum": CHANNELS},
            "status": {"type": "string", "enum": STATUSES},
            "intent": {"type": ["string", "null"]},
            "queue": {"type": ["string", "null"]},
            "agent": {"type": ["string", "null"]},
            "recording": {"type": ["string", "null"]},
            "call_id": {"type": ["string", "null"]},
            "started_at": TIME,
            "updated_at": TIME,
            "ended_at": _nullable(TIME),
        },
    },
    "Message": {
        "type": "object",
        "required": ["id", "conversation_id", "speaker", "text", "at"],
        "properties": {
            "id": ID,
            "conversation_id": ID,
            "speaker": {"type": "string", "enum": SPEAKERS},
            "text": {"type": "string"},
            "at": TIME,
            "offset_ms": {"type": ["integer", "null"], "description": "into the recording"},
            "confidence": {"type": ["number", "null"]},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "conversation_id", "kind", "at", "data"],
        "properties": {
            "id": ID,
            "conversation_id": ID,
            "kind": {"type": "string"},
            "at": TIME,
            "data": {"type": "object"},
        },
    },
    "ConversationPage": {
        "type": "object",
        "required": ["conversations", "next_before_id"],
        "properties": {
            "conversations": {"type": "array", "items": _ref("Conversation")},
            "next_before_id": {
                **_nullable(ID),
                "description": "pass as before_id for the next (older) page; null at the end",
            },
        },
    },
    "ConversationDetail": {
        "type": "object",
        "required": ["conversation", "customer", "messages", "events"],
        "properties": {
            "conversation": _ref("Conversation"),
            "customer": {"oneOf": [_ref("Customer"), {"type": "null"}]},
            "messages": {"type": "array", "items": _ref("Message")},
            "events": {"type": "array", "items": _ref("Event")},
        },
    },
    "PostedMessage": {
        "type": "object",
        "required": ["message", "conversation"],
        "properties": {"message": _ref("Message"), "conversation": _ref("Conversation")},
    },
    "Transcription": {
        "type": "object",
        "description": "the recording's post-call transcription job",
        "required": ["status", "attempts", "max_attempts", "error", "created_at", "updated_at"],
        "properties": {
            "status": {"type": "string", "enum": ["pending", "running", "done", "failed"]},
            "attempts": {"type": "integer", "minimum": 0},
            "max_attempts": {"type": "integer", "minimum": 1},
            "error": {"type": ["string", "null"], "description": "the last failure"},
            "created_at": TIME,
            "updated_at": TIME,
        },
    },
    "Recording": {
        "type": "object",
        "required": [
            "id",
            "conversation_id",
            "call_id",
            "format",
            "duration_s",
            "size_bytes",
            "started_at",
            "ended_at",
            "deleted_at",
            "audio_url",
            "transcription",
        ],  # fmt: skip
        "properties": {
            "id": ID,
            "conversation_id": ID,
            "call_id": {"type": "string"},
            "format": {"type": "string", "description": "wav or ogg"},
            "duration_s": {"type": "number", "minimum": 0},
            "size_bytes": {"type": "integer", "minimum": 0},
            "started_at": TIME,
            "ended_at": TIME,
            "node": {"type": ["string", "null"], "description": "the server that recorded it"},
            "deleted_at": {
                **_nullable(TIME),
                "description": "when the retention policy deleted the audio (transcript kept)",
            },
            "audio_url": {
                "type": ["string", "null"],
                "description": "GET it for the audio (Range requests); null once deleted",
            },
            "transcription": {"oneOf": [_ref("Transcription"), {"type": "null"}]},
        },
    },
    "TimedWord": {
        "type": "object",
        "required": ["text", "start_ms", "end_ms", "confidence"],
        "properties": {
            "text": {
                "type": "string",
                "description": "a masked number reads [card], [phone], [id]",
            },
            "start_ms": {"type": "integer", "minimum": 0, "description": "into the recording"},
            "end_ms": {"type": "integer", "minimum": 0},
            "confidence": {"type": ["number", "null"]},
        },
    },
    "TranscriptSegment": {
        "type": "object",
        "required": [
            "id",
            "recording_id",
            "channel",
            "speaker",
            "start_ms",
            "end_ms",
            "text",
            "confidence",
            "words",
        ],  # fmt: skip
        "properties": {
            "id": ID,
            "recording_id": ID,
            "channel": {"type": "string", "enum": ["caller", "agent"]},
            "speaker": {"type": "string", "enum": SPEAKERS},
            "start_ms": {"type": "integer", "minimum": 0},
            "end_ms": {"type": "integer", "minimum": 0},
            "text": {"type": "string"},
            "confidence": {"type": ["number", "null"]},
            "words": {"type": "array", "items": _ref("TimedWord")},
        },
    },
    "Transcript": {
        "type": "object",
        "required": ["conversation_id", "redacted", "recordings", "segments"],
        "properties": {
            "conversation_id": ID,
            "redacted": {"type": "boolean", "description": "false only for admin's unredacted"},
            "recordings": {"type": "array", "items": _ref("Recording")},
            "segments": {
                "type": "array",
                "items": _ref("TranscriptSegment"),
                "description": "both channels in time order",
            },
        },
    },
    "SnippetFragment": {
        "type": "object",
        "required": ["text", "match"],
        "properties": {
            "text": {"type": "string", "description": "redacted text; show as text, never HTML"},
            "match": {"type": "boolean", "description": "a matched word: highlight it"},
        },
    },
    "SearchHit": {
        "type": "object",
        "required": [
            "conversation_id",
            "recording_id",
            "kind",
            "item_id",
            "channel",
            "speaker",
            "offset_ms",
            "at",
            "snippet",
            "rank",
            "started_at",
            "duration_s",
            "link",
        ],  # fmt: skip
        "properties": {
            "conversation_id": ID,
            "recording_id": _nullable(ID),
            "kind": {"type": "string", "enum": ["transcript", "message"]},
            "item_id": {**ID, "description": "the transcript segment (first match) or message"},
            "channel": {"type": "string", "enum": CHANNELS, "description": "the conversation's"},
            "speaker": {"type": "string"},
            "offset_ms": {
                "type": ["integer", "null"],
                "description": "where the first matched word starts in the recording",
            },
            "at": TIME,
            "snippet": {"type": "array", "items": _ref("SnippetFragment")},
            "rank": {"type": "number", "description": "relevance, higher is better"},
            "started_at": TIME,
            "duration_s": {"type": ["number", "null"]},
            "queue": {"type": ["string", "null"]},
            "agent": {"type": ["string", "null"]},
            "intent": {"type": ["string", "null"]},
            "link": {"type": "string", "description": "the QA page, opened at the match"},
        },
    },
    "SearchPage": {
        "type": "object",
        "required": ["hits", "total", "next_offset"],
        "properties": {
            "hits": {"type": "array", "items": _ref("SearchHit"), "description": "best first"},
            "total": {"type": ["integer", "null"], "description": "all matches, if counted"},
            "next_offset": {
                "type": ["integer", "null"],
                "description": "pass as offset for the next page; null at the end",
            },
        },
    },
    "Agent": {
        "type": "object",
        "required": ["name", "roles", "state"],
        "properties": {
            "name": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string", "enum": STAFF}},
            "state": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
        },
    },
    "Queue": {
        "type": "object",
        "required": ["name", "length", "oldest_wait_s"],
        "properties": {
            "name": {"type": "string"},
            "length": {"type": "integer", "minimum": 0},
            "oldest_wait_s": {"type": "number", "minimum": 0},
            "agents_available": {"type": "integer", "minimum": 0},
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": ["id", "at", "actor", "action", "target", "detail"],
        "properties": {
            "id": ID,
            "at": TIME,
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "target": {"type": "string"},
            "detail": {"type": "object"},
        },
    },
    "Me": {
        "type": "object",
        "required": ["name", "kind", "roles", "scopes", "csrf_token"],
        "properties": {
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": ["user", "token"]},
            "roles": {"type": "array", "items": {"type": "string"}},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "csrf_token": {
                "type": ["string", "null"],
                "description": "send as X-CSRF-Token on POST/PUT with the session cookie",
            },
            "state": {"type": ["string", "null"], "description": "agent state (users)"},
        },
    },
    # ---- request bodies: closed objects, every field checked
    "LoginRequest": {
        "type": "object",
        "required": ["name", "password"],
        "additionalProperties": False,
        "properties": {
            "name": NAME,
            "password": {"type": "string", "minLength": 1, "maxLength": 1024},
        },
    },
    "NewConversation": {
        "type": "object",
        "required": ["channel", "identity"],
        "additionalProperties": False,
        "properties": {
            "channel": {"type": "string", "enum": ["webchat"], "description": "text channels"},
            "identity": _ref("Identity"),
            "display_name": SHORT_TEXT,
        },
    },
    "NewMessage": {
        "type": "object",
        "required": ["text"],
        "additionalProperties": False,
        "properties": {
            "text": TEXT,
            "speaker": {
                "type": "string",
                "enum": ["customer", "agent", "system"],
                "description": "tokens only (default customer); users always post as agent",
            },
            "at": TIME,
        },
    },
    "AgentStateChange": {
        "type": "object",
        "required": ["state"],
        "additionalProperties": False,
        "properties": {
            "state": {"type": "string", "enum": AGENT_STATES},
            "reason": {"type": "string", "minLength": 1, "maxLength": 100},  # why paused
        },
    },
    "MergeRequest": {
        "type": "object",
        "required": ["absorbed_id"],
        "additionalProperties": False,
        "properties": {
            "absorbed_id": {**ID, "description": "this customer is merged into the path's"}
        },
    },
}

_RESPONSES = {
    f"E{status}": _json(_ref("Error"), reason)
    for status, reason in {
        400: "bad input: malformed JSON, a wrong type, an unknown or missing field",
        401: "no credentials, or bad ones",
        403: "authenticated, but not allowed (role, scope or CSRF token)",
        404: "no such thing",
        409: "conflicts with what is stored",
        410: "gone: the retention policy deleted it",
        413: "body too large",
        415: "body is not application/json",
        416: "no requested byte range overlaps the file (Content-Range: bytes */SIZE)",
        429: "too many attempts; see Retry-After",
    }.items()
}

_CONVERSATION_ID = _path_id("conversation_id", "the conversation")
_RECORDING_ID = _path_id("recording_id", "the recording")
_QA = ["qa", "admin"]
_UNREDACTED = _query(
    "unredacted",
    {"type": "boolean"},
    "admin only (others get 403): the text as said or typed, numbers unmasked; audited",
)
_AUDIO: dict[str, Any] = {"audio/wav": {}, "audio/ogg": {}}
_CUSTOMER_ID = _path_id("customer_id", "the customer")
_BODY_ERRORS = (400, 401, 403, 404, 413, 415)

_PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "operationId": "getHealth",
            "summary": "Liveness and live figures (process supervisors poll it)",
            "tags": ["system"],
            "security": _PUBLIC,
            "x-access": {"public": True},
            "responses": {
                "200": _json(_ref("Health"), "serving"),
                "503": _json(_ref("Health"), "draining or unwell"),
            },
        }
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "getOpenapi",
            "summary": "This document",
            "tags": ["system"],
            "security": _PUBLIC,
            "x-access": {"public": True},
            "responses": {"200": _json({"type": "object"}, "the OpenAPI 3.1 document")},
        }
    },
    "/metrics": {
        "get": {
            "operationId": "getMetrics",
            "summary": "Prometheus text exposition (version 0.0.4)",
            "description": "Open to this machine; others need admin or metrics:read.",
            "tags": ["system"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": ["admin"], "scope": "metrics:read", "loopback": True},
            "responses": {
                "200": {"description": "the metrics", "content": {"text/plain": {}}},
                **_errors(401, 403),
            },
        }
    },
    "/api/calls/{call_id}/ivr": {
        "get": {
            "operationId": "getCallIvr",
            "summary": "What the speech IVR heard and decided for a live or recent call",
            "description": "Open to this machine (hotline call reads it); others need a "
            "staff role or calls:read.",
            "tags": ["calls"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": STAFF, "scope": "calls:read", "loopback": True},
            "parameters": [
                {
                    "name": "call_id",
                    "in": "path",
                    "required": True,
                    "description": "the SIP Call-ID",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                }
            ],
            "responses": {
                "200": _json(_ref("IvrOutcome"), "the outcome"),
                **_errors(400, 401, 403, 404),
            },
        }
    },
    "/api/login": {
        "post": {
            "operationId": "login",
            "summary": "Log in: sets the session cookie and returns the CSRF token",
            "tags": ["session"],
            "security": _PUBLIC,
            "x-access": {"public": True},
            "requestBody": _body("LoginRequest"),
            "responses": {
                "200": _json(_ref("Me"), "logged in"),
                **_errors(400, 401, 413, 415, 429),
            },
        }
    },
    "/api/logout": {
        "post": {
            "operationId": "logout",
            "summary": "End the session (needs X-CSRF-Token)",
            "tags": ["session"],
            "security": _SESSION,
            "x-access": {"roles": []},
            "responses": {"204": {"description": "logged out"}, **_errors(401, 403)},
        }
    },
    "/api/me": {
        "get": {
            "operationId": "getMe",
            "summary": "Who the credentials belong to (and the session's CSRF token)",
            "tags": ["session"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": [], "scope": "*"},
            "responses": {"200": _json(_ref("Me"), "the caller"), **_errors(401)},
        }
    },
    "/api/conversations": {
        "get": {
            "operationId": "listConversations",
            "summary": "Conversations, newest first, filtered, in pages",
            "description": "Agents without qa or admin may list only their own "
            "(agent=NAME), one customer's (customer_id) or those waiting (status=queued); "
            "any other search is a QA route (403).",
            "tags": ["conversations"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": STAFF, "scope": "conversations:read"},
            "parameters": [
                _query("customer_id", ID, "one customer's conversations"),
                _query("channel", {"type": "string", "enum": CHANNELS}, "voice or webchat"),
                _query("status", {"type": "string", "enum": STATUSES}, "current status"),
                _query("queue", SHORT_TEXT, "queue name"),
                _query("agent", SHORT_TEXT, "agent name"),
                _query("intent", SHORT_TEXT, "intent the IVR matched"),
                _query("since", TIME, "started at or after"),
                _query("until", TIME, "started before"),
                _query(
                    "limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (50)"
                ),
                _query("before_id", ID, "next_before_id of the previous page"),
            ],
            "responses": {
                "200": _json(_ref("ConversationPage"), "one page"),
                **_errors(400, 401, 403),
            },
        },
        "post": {
            "operationId": "openConversation",
            "summary": "A text channel's conversation for a customer identity",
            "description": "Returns the customer's open conversation on that channel (200) "
            "or opens a queued one (201). The customer is found or created by the identity.",
            "tags": ["conversations"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": ["agent", "admin"], "scope": "messages:write"},
            "requestBody": _body("NewConversation"),
            "responses": {
                "200": _json(_ref("Conversation"), "the open conversation"),
                "201": _json(_ref("Conversation"), "a new conversation"),
                **_errors(*_BODY_ERRORS),
            },
        },
    },
    "/api/conversations/{conversation_id}": {
        "get": {
            "operationId": "getConversation",
            "summary": "A conversation with its customer, messages and events (audited)",
            "tags": ["conversations"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": STAFF, "scope": "conversations:read"},
            "description": "Messages are redacted (card, phone and ID numbers masked) "
            "unless an admin asks for unredacted=true.",
            "parameters": [_CONVERSATION_ID, _UNREDACTED],
            "responses": {
                "200": _json(_ref("ConversationDetail"), "the conversation"),
                **_errors(400, 401, 403, 404),
            },
        }
    },
    "/api/conversations/{conversation_id}/messages": {
        "post": {
            "operationId": "postMessage",
            "summary": "Add a message (acknowledged once committed)",
            "description": "Agents post as agent; tokens with messages:write choose the "
            "speaker (customer by default). Pushed to the chat widget and agent pages.",
            "tags": ["conversations"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": ["agent"], "scope": "messages:write"},
            "parameters": [_CONVERSATION_ID],
            "requestBody": _body("NewMessage"),
            "responses": {
                "201": _json(_ref("PostedMessage"), "stored"),
                **_errors(*_BODY_ERRORS, 409),
            },
        }
    },
    "/api/conversations/{conversation_id}/take": {
        "post": {
            "operationId": "takeConversation",
            "summary": "An agent takes a waiting chat (status connected, agent = caller)",
            "tags": ["conversations"],
            "security": _SESSION,
            "x-access": {"roles": ["agent"]},
            "parameters": [_CONVERSATION_ID],
            "responses": {
                "200": _json(_ref("Conversation"), "taken"),
                **_errors(400, 401, 403, 404, 409),
            },
        }
    },
    "/api/conversations/{conversation_id}/close": {
        "post": {
            "operationId": "closeConversation",
            "summary": "Close a text conversation",
            "tags": ["conversations"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": ["agent", "admin"], "scope": "messages:write"},
            "parameters": [_CONVERSATION_ID],
            "responses": {
                "200": _json(_ref("Conversation"), "closed"),
                **_errors(400, 401, 403, 404, 409),
            },
        }
    },
    "/api/customers/{customer_id}": {
        "get": {
            "operationId": "getCustomer",
            "summary": "A customer and their identities (merged ids lead to the survivor)",
            "tags": ["customers"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": STAFF, "scope": "customers:read"},
            "parameters": [_CUSTOMER_ID],
            "responses": {
                "200": _json(_ref("Customer"), "the customer"),
                **_errors(400, 401, 403, 404),
            },
        }
    },
    "/api/customers/{customer_id}/identities": {
        "post": {
            "operationId": "addIdentity",
            "summary": "Give a customer another identity (phone, e-mail, account...)",
            "tags": ["customers"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": STAFF, "scope": "customers:write"},
            "parameters": [_CUSTOMER_ID],
            "requestBody": _body("Identity"),
            "responses": {
                "200": _json(_ref("Customer"), "the customer"),
                **_errors(*_BODY_ERRORS, 409),
            },
        }
    },
    "/api/customers/{customer_id}/merge": {
        "post": {
            "operationId": "mergeCustomers",
            "summary": "Merge another customer into this one (identities and conversations)",
            "tags": ["customers"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": STAFF, "scope": "customers:write"},
            "parameters": [_CUSTOMER_ID],
            "requestBody": _body("MergeRequest"),
            "responses": {
                "200": _json(_ref("Customer"), "the surviving customer"),
                **_errors(*_BODY_ERRORS, 409),
            },
        }
    },
    "/api/agents": {
        "get": {
            "operationId": "listAgents",
            "summary": "Users with the agent role and their states",
            "tags": ["agents"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": STAFF, "scope": "agents:read"},
            "responses": {
                "200": _json({"type": "array", "items": _ref("Agent")}, "the agents"),
                **_errors(401, 403),
            },
        }
    },
    "/api/agents/{name}/state": {
        "put": {
            "operationId": "setAgentState",
            "summary": "Set an agent's state (agents their own; admins anyone's)",
            "tags": ["agents"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": ["agent", "admin"], "scope": "agents:write"},
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "description": "agent",
                    "schema": NAME,
                }
            ],
            "requestBody": _body("AgentStateChange"),
            "responses": {
                "200": _json(_ref("Agent"), "the agent"),
                **_errors(*_BODY_ERRORS, 409),
            },
        }
    },
    "/api/queues": {
        "get": {
            "operationId": "listQueues",
            "summary": "The call queues now",
            "tags": ["agents"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": STAFF, "scope": "queues:read"},
            "responses": {
                "200": _json({"type": "array", "items": _ref("Queue")}, "the queues"),
                **_errors(401, 403),
            },
        }
    },
    "/api/conversations/{conversation_id}/transcript": {
        "get": {
            "operationId": "getTranscript",
            "summary": "A call's post-call transcript: both channels, timed words (audited)",
            "description": "Redacted unless an admin asks for unredacted=true. Empty "
            "segments for a chat, or while the transcription is not done.",
            "tags": ["qa"],
            "security": _SESSION,
            "x-access": {"roles": _QA},
            "parameters": [_CONVERSATION_ID, _UNREDACTED],
            "responses": {
                "200": _json(_ref("Transcript"), "the transcript"),
                **_errors(400, 401, 403, 404),
            },
        }
    },
    "/api/recordings/{recording_id}": {
        "get": {
            "operationId": "getRecording",
            "summary": "A recording's metadata and its transcription job",
            "tags": ["qa"],
            "security": _SESSION,
            "x-access": {"roles": _QA},
            "parameters": [_RECORDING_ID],
            "responses": {
                "200": _json(_ref("Recording"), "the recording (also once deleted)"),
                **_errors(400, 401, 403, 404),
            },
        }
    },
    "/api/recordings/{recording_id}/audio": {
        "get": {
            "operationId": "getRecordingAudio",
            "summary": "The recording's audio, with HTTP Range requests (audited)",
            "description": "One byte range per request (RFC 9110 §14): 206 with "
            "Content-Range; several ranges, another unit or an If-Range that no longer "
            "matches get the whole file (200). Every playback is audited (recording.play), "
            "once per listener and recording in 5 minutes.",
            "tags": ["qa"],
            "security": _SESSION,
            "x-access": {"roles": _QA},
            "parameters": [_RECORDING_ID],
            "responses": {
                "200": {"description": "the whole file", "content": _AUDIO},
                "206": {"description": "the requested range", "content": _AUDIO},
                **_errors(400, 401, 403, 404, 410, 416),
            },
        }
    },
    "/api/search": {
        "get": {
            "operationId": "searchConversations",
            "summary": "Full-text search of transcripts and chat messages, best first",
            "description": 'Query syntax: words (all must match), "a phrase", OR, '
            "NOT word or -word, prefix*, ( ). A malformed query is a 400 that says why. "
            "Snippets are always redacted.",
            "tags": ["qa"],
            "security": _SESSION,
            "x-access": {"roles": _QA},
            "parameters": [
                _query(
                    "q",
                    {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"\S"},
                    "the query",
                    required=True,
                ),
                _query("since", TIME, "conversations started at or after"),
                _query("until", TIME, "conversations started before"),
                _query("queue", SHORT_TEXT, "queue name"),
                _query("agent", SHORT_TEXT, "agent name"),
                _query("intent", SHORT_TEXT, "intent the IVR matched"),
                _query("channel", {"type": "string", "enum": CHANNELS}, "voice or webchat"),
                _query("min_duration_s", {"type": "number", "minimum": 0}, "calls this long"),
                _query("max_duration_s", {"type": "number", "minimum": 0}, "or at most this"),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "(20)"),
                _query(
                    "offset", {"type": "integer", "minimum": 0, "maximum": SEARCH_MAX_OFFSET}, "(0)"
                ),
            ],
            "responses": {
                "200": _json(_ref("SearchPage"), "one page of hits"),
                **_errors(400, 401, 403),
            },
        }
    },
    "/api/audit": {
        "get": {
            "operationId": "listAudit",
            "summary": "The audit log, newest first (QA)",
            "tags": ["qa"],
            "security": _AUTHENTICATED,
            "x-access": {"roles": ["qa", "admin"], "scope": "audit:read"},
            "parameters": [
                _query("target", SHORT_TEXT, "e.g. conversation:12"),
                _query("actor", SHORT_TEXT, "user name, or token:NAME"),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "(100)"),
            ],
            "responses": {
                "200": _json({"type": "array", "items": _ref("AuditEntry")}, "entries"),
                **_errors(400, 401, 403),
            },
        }
    },
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "hotline bridge",
        "version": "1",
        "description": "The conversation store of the hotline (voice and web chat), for "
        "agents, QA staff and text channels. Errors are {error, field}. Browsers use the "
        "session cookie from POST /api/login and send X-CSRF-Token on POST and PUT; other "
        "clients send Authorization: Bearer with a token from `hotline token create`.",
    },
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "responses": _RESPONSES,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "hl_... API token"},
            "session": {"type": "apiKey", "in": "cookie", "name": "hotline_session"},
        },
    },
}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation as ``(method, path, operation)``, methods upper-case."""
    return [
        (method.upper(), path, operation)
        for path, item in _PATHS.items()
        for method, operation in item.items()
    ]
