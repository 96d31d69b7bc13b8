"""The OpenAPI document as the API really answers: flask-smorest's, with the corrections
schemathesis's checks showed were needed.

* every error is ``application/problem+json`` (RFC 9457, :class:`nguon.schemas.ProblemSchema`),
  and every operation documents a ``default`` problem response (401, 403, 404, 409, 413,
  415, 429 can answer any of them);
* ``X-Pagination`` is a header whose value is a JSON object as text;
* decimals dumped with ``as_string`` are strings, integers within 64 bits
  (see :func:`field_limits`); strings never hold NUL (refused with 400, see
  :mod:`nguon.inputs`).
"""

from __future__ import annotations

import copy
from typing import Any

from nguon.errors import PROBLEM_MIME

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PAGINATION_HEADER = {
    "description": (
        "Pagination metadata, a JSON object as text: total, total_pages, first_page,"
        " last_page, page, previous_page, next_page"
    ),
    "schema": {"type": "string"},
}


def field_limits(self: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: what :mod:`nguon.inputs` accepts, said in the document.

    A ``Decimal(as_string=True)`` field is a string of digits (JSON numbers would lose the
    decimal's exactness); an integer without its own range is one JSON can carry here
    (64 bits, :data:`nguon.inputs.MAX_JSON_INT`); a field only answered may be null."""
    from marshmallow import fields, validate

    from nguon.inputs import MAX_JSON_INT

    found: dict[str, Any] = {}
    if field.dump_only:  # an answer's field without a value (last_login_at) is null
        found["nullable"] = True
    if isinstance(field, fields.Decimal) and field.as_string:
        found.update(type="string", format="decimal", pattern=r"^-?[0-9]+(\.[0-9]+)?$")
    elif isinstance(field, fields.Integer) and not any(
        isinstance(v, validate.Range) for v in field.validators
    ):
        found.update(minimum=-MAX_JSON_INT - 1, maximum=MAX_JSON_INT)
    return found


def _problem_content(response: dict[str, Any]) -> None:
    """An error response's content as problem+json; a response documented with its own
    body (an import's row report) keeps it and may also be a problem."""
    content = response.get("content")
    if not content:
        return
    corrected: dict[str, Any] = {}
    for mime, media in content.items():
        if media.get("schema", PROBLEM_REF) != PROBLEM_REF:
            corrected[mime] = media
    corrected[PROBLEM_MIME] = {"schema": PROBLEM_REF}
    response["content"] = corrected


def conform(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` corrected as the module docstring says."""
    from nguon.inputs import MAX_JSON_DEPTH

    spec = copy.deepcopy(spec)
    info = spec.setdefault("info", {})
    info["description"] = (
        f"{info.get('description', '')}\n\nInput rules (every operation): request bodies are"
        " strict JSON in UTF-8 (no NaN or Infinity, integers within 64 bits, at most"
        f" {MAX_JSON_DEPTH} levels of nesting); no text may contain NUL; ids beyond a 32-bit"
        " integer are 404. A refused request answers 400 or 422 with a problem (RFC 9457)"
        " naming the field, and changes nothing."
    ).strip()
    components = spec.setdefault("components", {})
    responses = components.setdefault("responses", {})
    responses["DEFAULT_ERROR"] = {
        "description": "A problem (RFC 9457)",
        "content": {PROBLEM_MIME: {"schema": PROBLEM_REF}},
    }
    for name, response in responses.items():
        if name != "DEFAULT_ERROR":
            _problem_content(response)
    if "PAGINATION" in components.get("headers", {}):
        components["headers"]["PAGINATION"] = PAGINATION_HEADER
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if (status == "default" or status[0] in "45") and "$ref" not in response:
                    _problem_content(response)
            operation["responses"].setdefault(
                "default", {"$ref": "#/components/responses/DEFAULT_ERROR"}
            )
    return spec
