"""httpserv.py - a small HTTP/1.1 server on asyncio streams for the test stand-ins.

Keep-alive, Content-Length and chunked request bodies, "Expect: 100-continue",
pipelined requests answered in order.  A handler gets a Request and returns a
Response; it may await as long as it likes without blocking other
connections.  Only what the AWS stand-ins need: no TLS, no response
streaming, no HTTP/2.
"""

import asyncio
import email.utils
import socket
import struct
import urllib.parse

MAX_HEADER_BYTES = 64 * 1024
REASONS = {
    100: "Continue", 200: "OK", 202: "Accepted", 204: "No Content",
    206: "Partial Content", 301: "Moved Permanently", 304: "Not Modified",
    307: "Temporary Redirect", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    411: "Length Required", 412: "Precondition Failed",
    413: "Request Entity Too Large", 416: "Range Not Satisfiable",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


class BadRequest(Exception):
    """The bytes on the wire are not a request we can read."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Request:
    """One parsed request.  headers keeps the wire order and spelling."""

    def __init__(self, method, target, version, headers, body, peer):
        self.method = method
        self.target = target          # raw request-target, e.g. /a%3Ab?x=1
        self.version = version
        self.headers = headers        # [(name, value), ...]
        self.body = body
        self.peer = peer
        path, _, query = target.partition("?")
        self.raw_path = path
        self.raw_query = query
        self.path = urllib.parse.unquote(path)

    def header(self, name, default=None):
        """The values of every header called name, joined by ',' as HTTP does."""
        lname = name.lower()
        vals = [v for n, v in self.headers if n.lower() == lname]
        return ",".join(vals) if vals else default

    def query(self):
        """Query parameters, percent-decoded, as a dict of the last values."""
        return dict(urllib.parse.parse_qsl(self.raw_query, keep_blank_values=True))


class Response:
    def __init__(self, status=200, body=b"", headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.headers = list(headers or [])
        # transport faults (lambda_api's injected faults): None, "reset"
        # (the connection reset, no answer), "truncated" (half the body,
        # then close) or "slow" (the body in pieces over slow_ms)
        self.fault = None
        self.slow_ms = 0


async def _read_chunked(reader, limit):
    parts = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequest(400, "bad chunk size line %r" % line[:40]) from None
        if size == 0:
            break
        total += size
        if total > limit:
            raise BadRequest(413, "request body over %d bytes" % limit)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest(400, "chunk not followed by CRLF")
    while True:                       # trailer section, ignored
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            break
    return b"".join(parts)


async def read_request(reader, writer, max_body):
    """Next request on the connection, or None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise BadRequest(400, "connection closed inside the request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "request head over %d bytes" % MAX_HEADER_BYTES) from None
    lines = head[:-4].decode("latin-1").split("\r\n")
    while lines and lines[0] == "":   # tolerate stray CRLF between requests
        lines.pop(0)
    parts = lines[0].split(" ") if lines else []
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "bad request line")
    method, target, version = parts
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:      # obsolete folding
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "bad header line %r" % line[:60])
        headers.append((name, value.strip()))
    req = Request(method, target, version, headers, b"", writer.get_extra_info("peername"))
    te = (req.header("Transfer-Encoding") or "").lower()
    cl = req.header("Content-Length")
    if (req.header("Expect") or "").lower() == "100-continue" and (te or (cl and cl != "0")):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if te:
        if te.split(",")[-1].strip() != "chunked":
            raise BadRequest(501, "transfer coding %r not supported" % te)
        req.body = await _read_chunked(reader, max_body)
    elif cl is not None:
        if not cl.isdigit():
            raise BadRequest(400, "bad Content-Length %r" % cl)
        n = int(cl)
        if n > max_body:
            raise BadRequest(413, "request body over %d bytes" % max_body)
        req.body = await reader.readexactly(n)
    return req


def _serialize(resp, keep_alive, head_only=False):
    out = ["HTTP/1.1 %d %s" % (resp.status, REASONS.get(resp.status, "Status"))]
    names = {n.lower() for n, _ in resp.headers}
    hdrs = list(resp.headers)
    if "date" not in names:
        hdrs.append(("Date", email.utils.formatdate(usegmt=True)))
    if "content-length" not in names:
        hdrs.append(("Content-Length", str(len(resp.body))))
    if not keep_alive:
        hdrs.append(("Connection", "close"))
    out += ["%s: %s" % (n, v) for n, v in hdrs]
    data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
    return data if head_only else data + resp.body


class Server:
    """Serves handler(Request) -> Response on host:port until close()."""

    def __init__(self, handler, max_body=64 * 1024 * 1024, on_error=None):
        self.handler = handler
        self.max_body = max_body
        self.on_error = on_error
        self.server = None
        self.connections = 0  # open now
        self.accepted = 0     # ever accepted

    async def start(self, host, port):
        self.server = await asyncio.start_server(
            self._serve, host, port, backlog=4096, limit=MAX_HEADER_BYTES)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        self.connections += 1
        self.accepted += 1
        try:
            while True:
                try:
                    req = await read_request(reader, writer, self.max_body)
                except BadRequest as e:
                    writer.write(_serialize(Response(e.status, str(e) + "\n"), False))
                    await writer.drain()
                    break
                if req is None:
                    break
                conn = (req.header("Connection") or "").lower()
                keep = "close" not in conn and (req.version == "HTTP/1.1" or "keep-alive" in conn)
                try:
                    resp = await self.handler(req)
                except Exception as e:  # a handler bug must not kill the server
                    if self.on_error:
                        resp = self.on_error(req, e)
                    else:
                        resp = Response(500, "internal error: %r\n" % e)
                if resp.fault:
                    if not await self._faulty(writer, resp, keep):
                        break
                    continue
                writer.write(_serialize(resp, keep, req.method == "HEAD"))
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.connections -= 1
            try:
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    @staticmethod
    async def _faulty(writer, resp, keep):
        """Send resp with its fault; whether the connection stays open."""
        data = _serialize(resp, keep)
        head = len(data) - len(resp.body)
        if resp.fault == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if resp.fault == "truncated":
            writer.write(data[:head + len(resp.body) // 2])
            await writer.drain()
            return False
        pieces = 8
        writer.write(data[:head])
        await writer.drain()
        step = (len(resp.body) + pieces - 1) // pieces or 1
        for i in range(0, len(resp.body), step):
            await asyncio.sleep(resp.slow_ms / 1000.0 / pieces)
            writer.write(resp.body[i:i + step])
            await writer.drain()
        return keep

    def close(self):
        if self.server:
            self.server.close()
