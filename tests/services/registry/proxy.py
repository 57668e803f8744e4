#!/usr/bin/env python3
"""proxy.py - what check_registry puts between hypertest and a test registry.

It forwards every request to the registry (docker-registry on 127.0.0.1)
and writes one line per request to a log before the client sees the answer,
so that the test can count requests exactly:

    METHOD PATH?QUERY STATUS

With --auth bearer it also plays a registry's token service: requests
without a token that covers their scope get 401 and a challenge
'WWW-Authenticate: Bearer realm=".../token",service="...",scope="..."';
GET /token?service=...&scope=... hands out a token (logged as
"TOKEN scope scope...").  With --corrupt-blobs, the last byte of every
GET /v2/.../blobs/... answer is changed.  With --tls-cert and --tls-key it
speaks HTTPS, and logs each connection's handshake as "TLS full" or
"TLS resumed" (a failed one: "TLS failed REASON"); with --close a
connection ends after the answer to a GET or HEAD.  With --patch-gate K,
the first PATCH passes and each later one waits until K more have arrived
(so that K uploads must be under way at once), at most 10 s: logged as
"GATE open" or "GATE timeout".
"""
import argparse
import base64
import http.client
import http.server
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import urllib.parse

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
       "proxy-connection", "te", "trailer", "upgrade"}


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}  # token -> set of (repository, action)
        self.log = open(args.log, "a", buffering=1)
        self.gate = threading.Condition(self.lock)
        self.patches = 0

    def write(self, line):
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()


def needed_scopes(method, path, query):
    """(repository, action) pairs a request needs."""
    m = re.match(r"^/v2/(.+?)/(blobs|manifests|tags)/", path)
    if not m:
        return set()
    repo = m.group(1)
    return {(repo, "pull" if method in ("GET", "HEAD") else "push")}


def granted(scopes):
    out = set()
    for s in scopes:
        parts = s.split(":")
        if len(parts) >= 3 and parts[0] == "repository":
            for a in parts[-1].split(","):
                out.add((":".join(parts[1:-1]), a))
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        # headers and body leave in two writes: without this, Nagle and
        # delayed ACKs cost 40 ms per answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, headers, data, head=False):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k, _ in headers):
            self.send_header("Content-Length", str(len(data)))
        if self.server.state.args.close and self.command in ("GET", "HEAD"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not head and data:
            self.wfile.write(data)

    def token(self, st, query):
        args = st.args
        if args.user:
            auth = self.headers.get("Authorization", "")
            want = "Basic " + base64.b64encode(
                f"{args.user}:{args.password}".encode()).decode()
            if auth != want:
                st.write("TOKEN-REFUSED")
                self.reply(401, [("Content-Type", "application/json")],
                           b'{"details":"bad credentials"}')
                return
        scopes = query.get("scope", [])
        tok = secrets.token_hex(16)
        with st.lock:
            st.tokens[tok] = granted(scopes)
        st.write("TOKEN " + " ".join(sorted(scopes)))
        data = json.dumps({"token": tok, "expires_in": args.expires_in}).encode()
        self.reply(200, [("Content-Type", "application/json")], data)

    def handle_any(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        data = self.body()
        head = self.command == "HEAD"
        if url.path == "/token":
            self.token(st, query)
            return
        path = self.path
        if st.args.auth == "bearer":
            need = needed_scopes(self.command, url.path, query)
            auth = self.headers.get("Authorization", "")
            have = set()
            if auth.startswith("Bearer "):
                with st.lock:
                    have = st.tokens.get(auth[7:], set())
            if not need <= have or (not auth.startswith("Bearer ")):
                repo = next(iter(need))[0] if need else ""
                scope = f"repository:{repo}:pull,push" if need else ""
                host = self.headers.get("Host")
                challenge = f'Bearer realm="http://{host}/token",service="test-registry"'
                if scope:
                    challenge += f',scope="{scope}"'
                st.write(f"{self.command} {path} 401")
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                self.reply(401, [("WWW-Authenticate", challenge),
                                 ("Content-Type", "application/json")], body, head)
                return
            if "mount" in query and (query.get("from", [""])[0], "pull") not in have:
                path = url.path  # a registry mounts only what the token may pull
        if st.args.patch_gate and self.command == "PATCH":
            with st.gate:
                st.patches += 1
                first = st.patches == 1
                st.gate.notify_all()
                met = first or st.gate.wait_for(
                    lambda: st.patches - 1 >= st.args.patch_gate, timeout=10)
            if not first:
                st.write("GATE open" if met else "GATE timeout")
        conn = http.client.HTTPConnection(st.args.upstream, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if st.args.auth == "bearer":
            headers.pop("Authorization", None)
        headers["Host"] = self.headers.get("Host")
        if data or self.command in ("PUT", "PATCH", "POST"):
            headers["Content-Length"] = str(len(data))
        conn.request(self.command, path, body=data if data else None, headers=headers)
        resp = conn.getresponse()
        out = resp.read() if not head else b""
        hdrs = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
        if st.args.tls_cert:  # the registry behind speaks plain HTTP: its absolute URLs too
            hdrs = [(k, "https://" + v[7:] if k.lower() == "location" and v.startswith("http://")
                     else v) for k, v in hdrs]
        if head and resp.getheader("Content-Length") is not None:
            hdrs.append(("Content-Length", resp.getheader("Content-Length")))
        if (st.args.corrupt_blobs and self.command == "GET" and "/blobs/" in url.path
                and resp.status == 200 and out):
            out = out[:-1] + bytes([out[-1] ^ 1])
        conn.close()
        st.write(f"{self.command} {path} {resp.status}")
        self.reply(resp.status, hdrs, out, head)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class TLSServer(http.server.ThreadingHTTPServer):
    """The proxy over TLS: the handshake at accept, logged."""

    def get_request(self):
        sock, addr = super().get_request()
        try:
            tls = self.tls.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.state.write("TLS failed %s" % getattr(e, "reason", e))
            sock.close()
            raise
        self.state.write("TLS %s" % ("resumed" if tls.session_reused else "full"))
        return tls, addr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="host:port of the registry")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--auth", choices=["none", "bearer"], default="none")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--expires-in", type=int, default=300)
    ap.add_argument("--corrupt-blobs", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--close", action="store_true")
    ap.add_argument("--patch-gate", type=int, default=0)
    args = ap.parse_args()
    if args.tls_cert:
        server = TLSServer(("127.0.0.1", 0), Handler)
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(args.tls_cert, args.tls_key)
    else:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(args)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
