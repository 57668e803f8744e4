"""awsfmt.py - responses and errors in the wire formats of the AWS services we stand in for.

Lambda (REST-JSON): error code in the x-amzn-ErrorType header, body
{"Type": "User"|"Service", "message": ...}.  JSON 1.1 (ECR, Service
Quotas): body {"__type": code, "message": ...}, status 400 for client errors.
S3: an XML <Error> document.  IAM (query protocol): an XML <ErrorResponse>.
"""

import json
import uuid
from xml.sax.saxutils import escape

from httpserv import Response


class ApiError(Exception):
    """An error answer: raised inside a service, turned into a response by the caller."""

    def __init__(self, status, code, message, headers=None, extra=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers or [])
        self.extra = dict(extra or {})


def request_id():
    return str(uuid.uuid4())


def json_response(obj, status=200, headers=None, content_type="application/json"):
    hdrs = [("Content-Type", content_type), ("x-amzn-RequestId", request_id())]
    hdrs += list(headers or [])
    return Response(status, json.dumps(obj), hdrs)


def lambda_error(err):
    body = {"Type": "Service" if err.status >= 500 else "User", "message": err.message}
    body.update(err.extra)
    return json_response(body, err.status, [("x-amzn-ErrorType", err.code)] + err.headers)


def json11_error(err):
    body = {"__type": err.code, "message": err.message}
    body.update(err.extra)
    return json_response(body, err.status, err.headers, "application/x-amz-json-1.1")


def s3_error(err, resource=""):
    rid = request_id()
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
           '<Resource>%s</Resource><RequestId>%s</RequestId></Error>'
           % (escape(err.code), escape(err.message), escape(resource), rid))
    return Response(err.status, xml, [("Content-Type", "application/xml"),
                                      ("x-amz-request-id", rid)] + err.headers)


IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def iam_error(err):
    """IAM's (query protocol) <ErrorResponse>, Type Sender for client errors."""
    rid = request_id()
    xml = ('<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message>'
           '</Error><RequestId>%s</RequestId></ErrorResponse>'
           % (IAM_NS, "Receiver" if err.status >= 500 else "Sender", escape(err.code),
              escape(err.message), rid))
    return Response(err.status, xml, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)]
                    + err.headers)


FORMATTERS = {"lambda": lambda_error, "json11": json11_error, "s3": s3_error, "iam": iam_error}


def error_response(fmt, err):
    return FORMATTERS[fmt](err)
