"""Tests for badkv/http/openapi.json: it parses, matches the app's routes and status codes, and is served."""

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest

import badkv
from badkv.http import api, params
from badkv.security import quotas

DOCUMENT_PATH = Path(badkv.__file__).parent / "http" / "openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
INTERNAL_ENDPOINTS = ("static",)
INTERNAL_PREFIXES = ("/cluster/",)

# Design section 4 (and the admin table): the status codes each operation must document, no more, no less.
AUTH = {"401", "403"}  # with -auth on: no valid token, or a token that does not open the route
QUOTA = {"429", "507"}  # over the tenant's write rate; over its keys or bytes (a delete adds neither)
EXPECTED_STATUSES = {
    ("get", "/api/v1/keys/{tenant}/{name}"): {"200", "400", "404", "503", "504"} | AUTH,
    ("post", "/api/v1/keys/{tenant}/{name}"): {"202", "400", "404", "409", "412", "413", "503", "504"} | AUTH | QUOTA,
    ("post", "/api/v1/keys/{tenant}/{name}/{timestamp}"): {"202", "400", "404", "409", "412", "413", "503", "504"}
    | AUTH | QUOTA,
    ("delete", "/api/v1/keys/{tenant}/{name}"): {"202", "400", "404", "409", "412", "413", "429", "503", "504"} | AUTH,
    ("delete", "/api/v1/keys/{tenant}/{name}/{timestamp}"): {"202", "400", "404", "409", "412", "413", "429", "503",
                                                            "504"} | AUTH,
    ("get", "/api/v1/take/{timestamp}"): {"200", "400", "410"} | AUTH,
    ("post", "/api/v1/txn/{tenant}"): {"200", "400", "409", "413", "503", "504"} | AUTH | QUOTA,
    ("post", "/api/v1/leases/{tenant}"): {"201", "400", "503", "504"} | AUTH,
    ("post", "/api/v1/leases/{tenant}/{lease_id}/keepalive"): {"200", "400", "404", "503", "504"} | AUTH,
    ("get", "/api/v1/leases/{tenant}/{lease_id}"): {"200", "400", "404", "503"} | AUTH,
    ("delete", "/api/v1/leases/{tenant}/{lease_id}"): {"202", "400", "404", "503", "504"} | AUTH,
    ("get", "/api/v1/openapi.json"): {"200"},
    ("get", "/admin/stats"): {"200"} | AUTH,
    ("get", "/admin/metrics"): {"200"} | AUTH,
    ("get", "/admin/backup"): {"200"} | AUTH,
    ("get", "/admin/members"): {"200"} | AUTH,
    ("get", "/admin/overview"): {"200"} | AUTH,
    ("get", "/admin/dashboard"): {"200"},
    ("get", "/admin/health"): {"200"},
    ("get", "/admin/ready"): {"200", "400", "503"},
    ("get", "/admin/tenants"): {"200"} | AUTH,
    ("post", "/admin/tenants/{tenant}"): {"201", "400", "409", "503", "504"} | AUTH,
    ("post", "/admin/tenants/{tenant}/rotate"): {"200", "400", "404", "409", "503", "504"} | AUTH,
    ("delete", "/admin/tenants/{tenant}/token"): {"202", "400", "404", "503", "504"} | AUTH,
    ("put", "/admin/tenants/{tenant}/quota"): {"200", "400", "503", "504"} | AUTH,
    ("delete", "/admin/tenants/{tenant}"): {"202", "400", "503", "504"} | AUTH,
}
OPEN_OPERATIONS = {("get", "/admin/health"), ("get", "/admin/ready"), ("get", "/admin/dashboard"),
                   ("get", "/api/v1/openapi.json")}


@pytest.fixture(scope="module")
def document():
    return json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def _resolve(document, node):
    """Follow a local ``$ref`` (one level is all the document uses)."""
    if "$ref" not in node:
        return node
    target = document
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target


def _app_operations(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) for every public route of the app, HEAD and OPTIONS left out."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in INTERNAL_ENDPOINTS or rule.rule.startswith(INTERNAL_PREFIXES):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operations |= {(method.lower(), path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return operations


def _ecma_fullmatch(pattern: str, text: str) -> bool:
    """Match like an OpenAPI (ECMA-262) pattern: there ``$`` does not match before a trailing newline."""
    return re.search(pattern.removesuffix("$") + r"\Z", text) is not None


def test_document_is_openapi_3_0_with_the_package_version(document):
    assert document["openapi"] == "3.0.3"
    assert document["info"]["title"] == "badkv"
    assert document["info"]["version"] == badkv.__version__
    assert "/cluster/v1" in document["info"]["description"]


def test_document_is_pretty_printed():
    text = DOCUMENT_PATH.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text.count("\n") > 100


def test_every_reference_resolves(document):
    text = json.dumps(document)
    references = set(re.findall(r'"\$ref": "([^"]+)"', text))
    assert references
    for reference in references:
        target = _resolve(document, {"$ref": reference})
        assert isinstance(target, dict), reference


def test_every_component_is_used(document):
    text = json.dumps(document["paths"]) + json.dumps(document["components"]["responses"]) \
        + json.dumps(document["components"]["schemas"])
    for kind, components in document["components"].items():
        if kind == "securitySchemes":  # used by name in a security requirement, not by $ref
            assert all(any(name in requirement for requirement in document["security"]) for name in components)
            continue
        for name in components:
            assert f'"#/components/{kind}/{name}"' in text, f"{kind}/{name} is never used"


def test_operations_are_well_formed(document):
    operation_ids = []
    for method, path, operation in _operations(document):
        operation_ids.append(operation["operationId"])
        assert operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            assert re.fullmatch(r"[1-5][0-9][0-9]", status), (method, path, status)
            assert _resolve(document, response)["description"], (method, path, status)
        parameters = [_resolve(document, p) for p in
                      document["paths"][path].get("parameters", []) + operation.get("parameters", [])]
        path_names = {p["name"] for p in parameters if p["in"] == "path"}
        assert path_names == set(re.findall(r"{([^}]+)}", path)), (method, path)
        assert all(p["required"] for p in parameters if p["in"] == "path")
    assert len(operation_ids) == len(set(operation_ids))


def test_document_and_app_have_the_same_operations(app, document):
    documented = {(method, path) for method, path, _ in _operations(document)}
    assert documented == _app_operations(app)


def test_no_internal_route_is_documented(document):
    assert not [path for path in document["paths"] if path.startswith(INTERNAL_PREFIXES)]


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED_STATUSES))
def test_documented_status_codes_are_the_ones_the_code_returns(document, method, path):
    operation = document["paths"][path][method]
    assert set(operation["responses"]) == EXPECTED_STATUSES[(method, path)]


def test_bearer_security_covers_every_operation_but_the_open_ones(document):
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearer": []}]
    for method, path, operation in _operations(document):
        is_open = operation.get("security") == []
        assert is_open == ((method, path) in OPEN_OPERATIONS), (method, path)
        assert ("401" in operation["responses"]) != is_open, (method, path)


def test_open_operations_are_the_ones_auth_leaves_open():
    from badkv.http import auth
    endpoints = {("get", "/admin/health"): "admin.health", ("get", "/admin/ready"): "admin.ready",
                 ("get", "/admin/dashboard"): "dashboard.page",
                 ("get", "/api/v1/openapi.json"): "api.openapi_document"}
    assert {endpoints[operation] for operation in OPEN_OPERATIONS} == auth.OPEN_ENDPOINTS


def test_every_error_response_uses_the_error_schema(document):
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            response = _resolve(document, response)
            if status.startswith(("4", "5")) and path != "/admin/ready":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "message"]


@pytest.mark.parametrize("status", ["503", "429"])
def test_503_and_429_responses_document_retry_after(document, status):
    for method, path, operation in _operations(document):
        response = operation["responses"].get(status)
        if response is not None and path.startswith("/api/"):
            assert "Retry-After" in _resolve(document, response)["headers"], (method, path)


@pytest.mark.parametrize("status", ["200", "202"])
def test_record_responses_document_the_record_headers(document, status):
    for method, path, operation in _operations(document):
        if path.startswith("/api/v1/keys/{tenant}/") and status in operation["responses"]:  # (not range listing)
            headers = _resolve(document, operation["responses"][status])["headers"]
            assert set(headers) == {"X-Badkv-Timestamp", "X-Badkv-Revision", "ETag"}, (method, path)


def test_writes_document_body_and_preconditions(document):
    for method, path, operation in _operations(document):
        if not path.startswith("/api/v1/keys/") or method == "get":
            continue
        names = {_resolve(document, p)["name"] for p in operation["parameters"]}
        # (only a put can attach its key to a lease)
        assert names == {"If-Match", "If-None-Match"} | ({"lease"} if method == "post" else set()), (method, path)
        if method == "post":
            body = _resolve(document, operation["requestBody"])
            assert "application/octet-stream" in body["content"]


def test_limits_match_the_code(document):
    parameters = document["components"]["parameters"]
    assert parameters["Tenant"]["schema"]["pattern"] == params.TENANT_PATTERN.pattern
    assert parameters["Name"]["schema"]["maxLength"] == api.MAX_NAME_BYTES
    assert parameters["Timestamp"]["schema"]["maximum"] == api.MAX_TIMESTAMP - 1
    assert parameters["MinRevision"]["schema"]["maximum"] == api.MAX_TIMESTAMP - 1
    assert parameters["Consistency"]["schema"]["enum"] == list(api.CONSISTENCY_LEVELS)
    limit = parameters["TakeLimit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, api.MAX_TAKE_LIMIT, api.DEFAULT_TAKE_LIMIT)
    quota = document["components"]["schemas"]["Quota"]["properties"]
    assert quota["keys"]["maximum"] == quota["bytes"]["maximum"] == quotas.MAX_LIMIT


@pytest.mark.parametrize("tenant", ["a", "A.b_c-9", "x" * 128, "x" * 129, "a b", "a:b", "ä", ""])
def test_tenant_pattern_agrees_with_the_api(client, document, tenant):
    schema = document["components"]["parameters"]["Tenant"]["schema"]
    documented = len(tenant) <= schema["maxLength"] and _ecma_fullmatch(schema["pattern"], tenant)
    response = client.post(f"/api/v1/keys/{quote(tenant, safe='')}/k", data=b"v") if tenant else None
    accepted = response is not None and response.status_code == 202
    assert documented == accepted


@pytest.mark.parametrize("name", ["k", "é" * 512, "é" * 513, "x" * 1025, "a b", "a\x00b", "a\x1fb", "a\x7fb",
                                  "日本語", "a.b-c_d~e"])
def test_name_pattern_agrees_with_the_api(client, document, name):
    schema = document["components"]["parameters"]["Name"]["schema"]
    documented = (len(name.encode()) <= schema["maxLength"]
                  and _ecma_fullmatch(schema["pattern"], name))
    response = client.post(f"/api/v1/keys/t/{quote(name, safe='')}", data=b"v")
    assert documented == (response.status_code == 202)


def test_served_at_api_v1_openapi_json(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
