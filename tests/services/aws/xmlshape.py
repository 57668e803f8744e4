"""xmlshape.py - the query protocol (IAM) and REST-XML (S3) wire forms, read
and written by botocore's service model, as the services do.

parse_query(): an IAM request's form fields (Tags.member.1.Key=...) into the
input shape's members; a field the shape does not have is reported, as AWS
refuses it.
parse_xml(): a REST-XML payload (an S3 configuration document) into its
shape's members; an element the shape does not have is reported.
to_xml(): a value of a shape as XML elements, for query-protocol results
and REST-XML payloads (timestamps ISO 8601, lists wrapped in <member>
unless flattened, maps as <entry><key/><value/></entry>).
"""

import datetime
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape


class ShapeError(Exception):
    """The wire form does not fit the shape: errors, each a sentence."""

    def __init__(self, errors):
        super().__init__("; ".join(errors))
        self.errors = errors


def _scalar(shape, text):
    t = shape.type_name
    if t in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text             # modelcheck reports the type
    if t in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    if t == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


# ---- query protocol --------------------------------------------------------------

def parse_query(shape, fields, skip=("Action", "Version")):
    """fields: {name: value} of the form; returns the members as a dict."""
    used = set(skip)
    value = _query_struct(shape, fields, "", used)
    unknown = sorted(k for k in fields if k not in used)
    if unknown:
        raise ShapeError(["Parameter '%s' is not a member of the request" % k for k in unknown])
    return value or {}


def _query_value(shape, fields, key, used):
    t = shape.type_name
    if t == "structure":
        return _query_struct(shape, fields, key + ".", used)
    if t == "list":
        return _query_list(shape, fields, key, used)
    if t == "map":
        return _query_map(shape, fields, key, used)
    if key in fields:
        used.add(key)
        return _scalar(shape, fields[key])
    return None


def _query_struct(shape, fields, prefix, used):
    out = {}
    for name, member in shape.members.items():
        wire = member.serialization.get("name", name)
        v = _query_value(member, fields, prefix + wire, used)
        if v is not None:
            out[name] = v
    return out if out or not prefix else None


def _indices(fields, prefix):
    found = set()
    for k in fields:
        if k.startswith(prefix):
            head = k[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _query_list(shape, fields, key, used):
    if key in fields and fields[key] == "":
        used.add(key)
        return []
    if shape.serialization.get("flattened"):
        prefix = key + "."
    else:
        prefix = "%s.%s." % (key, shape.member.serialization.get("name", "member"))
    idx = _indices(fields, prefix)
    if not idx:
        return None
    return [_query_value(shape.member, fields, prefix + str(i), used) for i in idx]


def _query_map(shape, fields, key, used):
    flat = shape.serialization.get("flattened")
    prefix = key + "." if flat else key + ".entry."
    kname = shape.key.serialization.get("name", "key")
    vname = shape.value.serialization.get("name", "value")
    out = {}
    for i in _indices(fields, prefix):
        k = _query_value(shape.key, fields, "%s%d.%s" % (prefix, i, kname), used)
        v = _query_value(shape.value, fields, "%s%d.%s" % (prefix, i, vname), used)
        if k is not None:
            out[k] = v
    return out or None


# ---- XML in --------------------------------------------------------------------

def _local(tag):
    return tag.rsplit("}", 1)[-1]


def parse_xml(shape, data):
    """The payload document data (bytes) as shape's members."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ShapeError(["not well-formed XML: %s" % e]) from None
    errors = []
    value = _xml_struct(shape, root, _local(root.tag), errors)
    if errors:
        raise ShapeError(errors)
    return value


def _xml_value(shape, elem, where, errors):
    t = shape.type_name
    if t == "structure":
        return _xml_struct(shape, elem, where, errors)
    if t == "list":
        name = shape.member.serialization.get("name", "member")
        items = [c for c in elem if _local(c.tag) == name]
        for c in elem:
            if _local(c.tag) != name:
                errors.append("unexpected element <%s> in %s" % (_local(c.tag), where))
        return [_xml_value(shape.member, c, "%s/%s" % (where, name), errors) for c in items]
    if t == "map":
        out = {}
        for entry in elem:
            k = entry.find("key")
            v = entry.find("value")
            if k is not None:
                out[k.text or ""] = _xml_value(shape.value, v, where, errors) if v is not None else None
        return out
    if len(elem):
        errors.append("element <%s> must hold text, not elements" % where)
    return _scalar(shape, (elem.text or "").strip() if t != "string" else (elem.text or ""))


def _xml_struct(shape, elem, where, errors):
    by_wire = {}
    for name, member in shape.members.items():
        loc = member.serialization.get("location")
        if loc in ("header", "headers", "uri", "querystring", "statusCode"):
            continue
        if member.type_name == "list" and member.serialization.get("flattened"):
            wire = member.serialization.get("name", member.member.serialization.get("name", name))
        else:
            wire = member.serialization.get("name", name)
        by_wire[wire] = (name, member)
    out = {}
    for child in elem:
        tag = _local(child.tag)
        hit = by_wire.get(tag)
        if hit is None:
            errors.append("unexpected element <%s> in %s" % (tag, where))
            continue
        name, member = hit
        path = "%s/%s" % (where, tag)
        if member.type_name == "list" and member.serialization.get("flattened"):
            out.setdefault(name, []).append(_xml_value(member.member, child, path, errors))
        else:
            if name in out:
                errors.append("element <%s> given twice in %s" % (tag, where))
            out[name] = _xml_value(member, child, path, errors)
    return out


# ---- XML out -------------------------------------------------------------------

def _text(shape, value):
    t = shape.type_name
    if t == "boolean":
        return "true" if value else "false"
    if t == "timestamp":
        if isinstance(value, (int, float)):
            value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        if isinstance(value, datetime.datetime):
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        return str(value)
    return escape(str(value))


def to_xml(shape, value, name):
    """Element <name> holding value of shape (a string)."""
    t = shape.type_name
    if t == "structure":
        inner = []
        for mname, member in shape.members.items():
            if mname not in value or value[mname] is None:
                continue
            if member.serialization.get("location"):
                continue
            v = value[mname]
            if member.type_name == "list" and member.serialization.get("flattened"):
                wire = member.serialization.get("name", member.member.serialization.get("name", mname))
                inner += [to_xml(member.member, x, wire) for x in v]
            else:
                inner.append(to_xml(member, v, member.serialization.get("name", mname)))
        return "<%s>%s</%s>" % (name, "".join(inner), name)
    if t == "list":
        mname = shape.member.serialization.get("name", "member")
        return "<%s>%s</%s>" % (name, "".join(to_xml(shape.member, x, mname) for x in value), name)
    if t == "map":
        entries = "".join("<entry>%s%s</entry>" % (to_xml(shape.key, k, "key"), to_xml(shape.value, v, "value"))
                          for k, v in value.items())
        return "<%s>%s</%s>" % (name, entries, name)
    return "<%s>%s</%s>" % (name, _text(shape, value), name)
