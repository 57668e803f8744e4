#!/usr/bin/env python3
"""A registry that stalls: every request is answered with a 200 status, a
Content-Length, the first bytes of the body, and then nothing, for as long
as the client stays connected.  Tests use it to show that a pull or push
under way ends on the first SIGINT/SIGTERM.

    stall.py PORTFILE

listens on 127.0.0.1 (a free port, written to PORTFILE once listening) and
writes one line per request it stalled to stdout.
"""
import os
import socket
import sys
import threading


def serve(conn):
    try:
        conn.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        sys.stdout.write("stalled: %s\n" % line)
        sys.stdout.flush()
        conn.sendall(b"HTTP/1.1 200 OK\r\n"
                     b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                     b"Content-Length: 100000\r\n\r\n{\"schemaVersion\": ")
        conn.settimeout(None)
        while conn.recv(4096):  # until the client goes
            pass
    except OSError:
        pass
    finally:
        conn.close()


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
