"""Both ends of ``/cluster/v1/propose`` at the HTTP layer: a follower's client write becomes a proposal,
and the leader answers each proposal of a batch exactly as its public API would answer the write.

The leader checks every proposal again as if the client had called it: the names, the reserved tenants,
and with ``-auth on`` the client's token (a follower's view of the tokens may lag one rotation behind).
"""

from __future__ import annotations

from flask import Response, current_app

from badkv.errors import BadkvError, BadRequest, Forbidden, ReservedTenant, Unauthenticated
from badkv.http.auth import bearer_token
from badkv.http.codec import record_headers, write_answer
from badkv.http.params import parse_name, parse_tenant
from badkv.security.tokens import TokenIndex

RELAYED_HEADERS = ("content-type", "etag", "retry-after", "www-authenticate")
FIELDS = {"op": str, "tenant": str, "name": str, "value": bytes, "timestamp": (int, type(None)),
          "if_match": (int, type(None)), "if_none_match": bool, "authorization": (str, type(None))}


def proposal(op: str, tenant: str, name: str, value: bytes, timestamp: int | None, if_match: int | None,
             if_none_match: bool, authorization: str | None) -> dict:
    """A follower's client write as one proposal for the leader."""
    return {"op": op, "tenant": tenant, "name": name, "value": value, "timestamp": timestamp,
            "if_match": if_match, "if_none_match": if_none_match, "authorization": authorization}


def written(tenant: str, name: str, record) -> Response:
    """The public API's answer to a write that was acknowledged."""
    return Response(write_answer(tenant, name, record), status=202, content_type="application/json",
                    headers=record_headers(record))


def answer_proposals(node, proposals: list) -> list[list]:
    """The leader's answer to each proposal: [status, headers, body], in order."""
    answers: list = [None] * len(proposals)
    admitted, positions = [], []
    for position, proposed in enumerate(proposals):
        try:
            admitted.append(_admit(node, proposed))
            positions.append(position)
        except BadkvError as error:
            answers[position] = _wire(_refusal(error))
    for position, write, outcome in zip(positions, admitted, node.write_batch(admitted)):
        if isinstance(outcome, BadkvError):
            answers[position] = _wire(_refusal(outcome))
        else:
            answers[position] = _wire(written(write["tenant"], write["name"], outcome))
    return answers


def _admit(node, proposed) -> dict:
    """Check one proposal as the public API checks a write; ``Writer.begin``'s arguments."""
    if not isinstance(proposed, dict) or any(not isinstance(proposed.get(field), kind)
                                             for field, kind in FIELDS.items()) or proposed["op"] not in ("put", "delete"):
        raise BadRequest("a malformed proposal")
    tenant, name = parse_tenant(proposed["tenant"]), parse_name(proposed["name"])
    if tenant[0] == "_":
        raise ReservedTenant(f"tenant {tenant} is reserved for the system (names starting with '_')")
    if node.config.auth:
        _check_token(node, proposed["authorization"], tenant)
    write = {field: proposed[field] for field in FIELDS if field != "authorization"}
    write["tenant"], write["name"] = tenant, name
    return write


def _check_token(node, authorization: str | None, tenant: str) -> None:
    who = node.tenants.identify(bearer_token(authorization))
    if who is None:
        raise Unauthenticated("a valid bearer token is needed: Authorization: Bearer <token>")
    if who is not TokenIndex.ADMIN and who != tenant:
        raise Forbidden(f"this token opens tenant {who} only, not tenant {tenant}")


def _refusal(error: BadkvError) -> Response:
    response = current_app.json.response(error.to_dict())
    response.status_code = error.status
    for header, value in error.headers.items():
        response.headers[header] = value
    return response


def _wire(response: Response) -> list:
    headers = {k: v for k, v in response.headers.items()
               if k.lower() in RELAYED_HEADERS or k.lower().startswith("x-badkv-")}
    return [response.status_code, headers, response.get_data()]
