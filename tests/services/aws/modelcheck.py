"""Requests checked against botocore's service model of their operation,
as AWS checks them before anything else: required members present, no
member the input shape does not have, each value of its shape's type, enum
values from the enum, numbers in range, strings and lists within their
length bounds.  (Patterns are left to each service's own checks, which
answer with the service's own error codes.)

params_json11(): a JSON 1.1 request's body is the input shape.
params_rest_json(): a REST-JSON request's members come from the URI
(requestUri's {Member} labels), the query string, headers and the body.
validate() raises ModelError with AWS's "N validation errors detected"
message."""

import base64
import functools
import re
import urllib.parse

import botocore.session


class ModelError(Exception):
    def __init__(self, errors):
        self.errors = errors
        n = len(errors)
        super().__init__("%d validation error%s detected: %s" % (n, "" if n == 1 else "s",
                                                                 "; ".join(errors)))


@functools.lru_cache(maxsize=None)
def _service(name):
    return botocore.session.get_session().get_service_model(name)


def service_model(name):
    return _service(name)


def operation(service, op):
    """The botocore OperationModel, or None for an operation the model lacks."""
    try:
        return _service(service).operation_model(op)
    except Exception:   # botocore's OperationNotFoundError
        return None


def params_json11(body):
    return body


def _uri_labels(template, raw_path):
    """{Label: value} of a requestUri template matched against raw_path."""
    names, parts, pos = [], [], 0
    tpath = template.partition("?")[0]
    for m in re.finditer(r"\{([A-Za-z0-9_]+)(\+?)\}", tpath):
        parts.append(re.escape(tpath[pos:m.start()]))
        parts.append("(.+)" if m.group(2) else "([^/]+)")
        names.append(m.group(1))
        pos = m.end()
    parts.append(re.escape(tpath[pos:]))
    m = re.fullmatch("".join(parts), raw_path)
    if not m:
        return {}
    return {n: urllib.parse.unquote(v) for n, v in zip(names, m.groups())}


def params_rest_json(op_model, req, body):
    """The members of a REST-JSON request; body is the parsed JSON body (or
    None when the input has a payload member, which takes the raw body)."""
    shape = op_model.input_shape
    params = {}
    if shape is None:
        return params
    labels = _uri_labels(op_model.http.get("requestUri", "/"), req.raw_path)
    query = urllib.parse.parse_qs(req.raw_query, keep_blank_values=True)
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        loc = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if loc == "uri":
            if wire in labels:
                params[name] = labels[wire]
        elif loc == "querystring":
            if wire in query:
                vals = query[wire]
                params[name] = vals if member.type_name == "list" else _coerce(member, vals[-1])
        elif loc == "header":
            v = req.header(wire)
            if v is not None:
                params[name] = _coerce(member, v)
        elif name == payload:
            if req.body:
                params[name] = req.body
    if body is not None and not payload:
        if not isinstance(body, dict):
            raise ModelError(["the request body must be a JSON object"])
        for k, v in body.items():
            member = shape.members.get(k)
            if member is not None and member.serialization.get("location"):
                raise ModelError(["Member '%s' is not expected in the body" % k])
            params[k] = v
    return params


def _coerce(member, text):
    t = member.type_name
    try:
        if t in ("integer", "long"):
            return int(text)
        if t == "boolean":
            return {"true": True, "false": False}[text]
    except (ValueError, KeyError):
        return text
    return text


def _check(shape, value, where, errors):
    t = shape.type_name
    meta = shape.metadata
    if t == "structure":
        if not isinstance(value, dict):
            errors.append("Value at '%s' must be an object" % where)
            return
        for req in shape.required_members:
            if req not in value:
                errors.append("Value null at '%s' failed to satisfy constraint: Member must not "
                              "be null" % _join(where, req))
        for k, v in value.items():
            if k not in shape.members:
                errors.append("Member '%s' at '%s' is not known" % (k, where or "request"))
            else:
                _check(shape.members[k], v, _join(where, k), errors)
    elif t == "list":
        if not isinstance(value, list):
            errors.append("Value at '%s' must be a list" % where)
            return
        _length(meta, len(value), where, errors)
        for i, v in enumerate(value):
            _check(shape.member, v, "%s.%d.member" % (where, i + 1), errors)
    elif t == "map":
        if not isinstance(value, dict):
            errors.append("Value at '%s' must be a map" % where)
            return
        _length(meta, len(value), where, errors)
        for k, v in value.items():
            _check(shape.key, k, where + ".key", errors)
            _check(shape.value, v, "%s.%s" % (where, k), errors)
    elif t == "string":
        if not isinstance(value, str):
            errors.append("Value at '%s' must be a string" % where)
            return
        if shape.enum and value not in shape.enum:
            errors.append("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy "
                          "enum value set: [%s]" % (value, where, ", ".join(shape.enum)))
        _length(meta, len(value), where, errors)
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append("Value at '%s' must be a whole number" % where)
            return
        if "min" in meta and value < meta["min"]:
            errors.append("Value '%d' at '%s' failed to satisfy constraint: Member must have "
                          "value greater than or equal to %d" % (value, where, meta["min"]))
        if "max" in meta and value > meta["max"]:
            errors.append("Value '%d' at '%s' failed to satisfy constraint: Member must have "
                          "value less than or equal to %d" % (value, where, meta["max"]))
    elif t == "boolean":
        if not isinstance(value, bool):
            errors.append("Value at '%s' must be a boolean" % where)
    elif t in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append("Value at '%s' must be a number" % where)
    elif t == "blob":
        if isinstance(value, str):
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                errors.append("Value at '%s' must be base64" % where)
        elif not isinstance(value, (bytes, bytearray)):
            errors.append("Value at '%s' must be a blob" % where)
    elif t == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            errors.append("Value at '%s' must be a timestamp" % where)


def _length(meta, n, where, errors):
    if "min" in meta and n < meta["min"]:
        errors.append("Value at '%s' failed to satisfy constraint: Member must have length "
                      "greater than or equal to %d" % (where, meta["min"]))
    if "max" in meta and n > meta["max"]:
        errors.append("Value at '%s' failed to satisfy constraint: Member must have length "
                      "less than or equal to %d" % (where, meta["max"]))


def _join(where, name):
    name = name[:1].lower() + name[1:]
    return "%s.%s" % (where, name) if where else name


def validate(op_model, params):
    """Raise ModelError when params do not fit op_model's input shape."""
    shape = op_model.input_shape
    if shape is None:
        if params:
            raise ModelError(["the operation takes no input"])
        return
    errors = []
    _check(shape, params, "", errors)
    if errors:
        raise ModelError(errors)
