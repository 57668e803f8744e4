// h2-server.mjs - the HTTP/2 server of tests/plugins/check_aws_http2.c:
// node's own http2 module (nghttp2 inside), whose answers the request's
// path chooses.
//
//   node h2-server.mjs MODE MAX_STREAMS [CERT KEY]
//
// MODE: h2c (HTTP/2 over plain TCP, prior knowledge), h2 (over TLS, ALPN
// "h2" only), h1tls (HTTPS that knows HTTP/1.1 alone: no ALPN "h2").
// MAX_STREAMS: the SETTINGS_MAX_CONCURRENT_STREAMS it announces.  Prints
// "PORT N CONTROL M" once both listen on 127.0.0.1; ends when its standard input
// closes (the test is gone) or on SIGTERM.
//
// Paths (the last segment): cl (200 "hello", with a content-length), stream
// ("hello world" in three DATA frames, no content-length), created (201
// "ok"), big (100 bytes announced), bigstream (100 bytes, not announced),
// slow (the answer after 1500 ms), reset (RST_STREAM INTERNAL_ERROR before
// any answer), refuse (REFUSED_STREAM the first time for each ?k=KEY,
// then 200), goaway (?n=N: the N-th stream of a session to that path makes
// it send GOAWAY whose last stream id is that stream's; the streams of the
// session after it are never answered, and that stream is: "goaway"),
// killonce (the first one destroys its session's socket without a word;
// the next ones answer "alive"), echo (a JSON of the method, :authority,
// the header fields and the body's length).  GET /__stats: {"sessions",
// "streams", "mostInSession", "clientResets" (streams the client reset,
// with their codes)}; POST /__reset zeroes them.
import fs from "node:fs";
import http2 from "node:http2";
import http from "node:http";
import https from "node:https";

const [mode, maxStreams, cert, key] = process.argv.slice(2);
const stats = {sessions: 0, streams: 0, mostInSession: 0, clientResets: []};
const refused = new Set();
let killed = 0;

function reply(stream, status, body, headers = {}) {
  if (stream.destroyed || stream.closed)
    return;
  if (stream.isHead)
    return stream.respond({":status": status, ...headers}, {endStream: true});
  stream.respond({":status": status, ...headers});
  stream.end(body);
}

// the raw sockets by remote port: a session's own cannot be destroyed
const sockets = new Map();

function onStream(stream, headers) {
  const session = stream.session;
  const url = new URL(headers[":path"], "http://x");
  const last = url.pathname.split("/").pop();
  stream.isHead = headers[":method"] === "HEAD";
  stream.on("error", () => {});
  stats.streams++;
  session.open = (session.open || 0) + 1;
  stats.mostInSession = Math.max(stats.mostInSession, session.open);
  stream.on("close", () => {
    session.open--;
    if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR && !stream.ours)
      stats.clientResets.push(stream.rstCode);
  });
  const parts = [];
  stream.on("data", (d) => parts.push(d));
  stream.on("end", () => {
    const body = Buffer.concat(parts);
    switch (last) {
    case "cl":
      return reply(stream, 200, "hello", {"content-length": 5, "content-type": "text/plain"});
    case "stream":
      stream.respond({":status": 200});
      stream.write("hel");
      setTimeout(() => { stream.write("lo wo"); setTimeout(() => stream.end("rld"), 5); }, 5);
      return;
    case "longheader":
      return reply(stream, 200, "long", {"x-long": "a".repeat(5000)});
    case "created":
      return reply(stream, 201, "ok");
    case "big":
      return reply(stream, 200, "0".repeat(100), {"content-length": 100});
    case "bigstream":
      return reply(stream, 200, "0".repeat(100));
    case "slow":
      return setTimeout(() => reply(stream, 200, "late"), 1500);
    case "reset":
      stream.ours = true;
      return stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    case "refuse": {
      const k = url.searchParams.get("k");
      if (!refused.has(k)) {
        refused.add(k);
        stream.ours = true;
        return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      }
      return reply(stream, 200, "accepted");
    }
    case "goaway": {
      session.goawayCount = (session.goawayCount || 0) + 1;
      if (session.goawayCount === Number(url.searchParams.get("n"))) {
        session.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
        session.goneAfter = stream.id;
      }
      if (session.goneAfter !== undefined && stream.id > session.goneAfter)
        return; // never answered: the GOAWAY says it was not processed
      return setTimeout(() => reply(stream, 200, "goaway"), 50);
    }
    case "killonce":
      if (killed++ === 0)
        return sockets.get(session.socket.remotePort).destroy();
      return setTimeout(() => reply(stream, 200, "alive"), 20);
    case "echo": {
      const h = {};
      for (const [k, v] of Object.entries(headers))
        if (!k.startsWith(":"))
          h[k] = v;
      return reply(stream, 200, JSON.stringify({method: headers[":method"], authority: headers[":authority"],
                                                scheme: headers[":scheme"], headers: h, bodyLength: body.length}));
    }
    default:
      return reply(stream, 404, "");
    }
  });
}

const settings = {maxConcurrentStreams: Number(maxStreams || 100)};
let server;
if (mode === "h1tls") {
  server = https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)}, (req, res) => {
    stats.streams++;
    req.resume();
    req.on("end", () => {
      const last = req.url.split("?")[0].split("/").pop();
      if (last === "cl") {
        res.writeHead(200, {"content-length": 5});
        return res.end("hello");
      }
      res.writeHead(404);
      res.end("");
    });
  });
  server.on("secureConnection", () => stats.sessions++);
} else {
  server = mode === "h2"
    ? http2.createSecureServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key), allowHTTP1: false, settings})
    : http2.createServer({settings});
  server.on("session", (session) => {
    stats.sessions++;
    session.on("error", () => {});
  });
  server.on(mode === "h2" ? "secureConnection" : "connection", (sock) => {
    sockets.set(sock.remotePort, sock);
    sock.on("close", () => sockets.delete(sock.remotePort));
  });
  server.on("stream", onStream);
}
const control = http.createServer((req, res) => {
  if (req.method === "POST" && req.url === "/reset") {
    stats.sessions = stats.streams = stats.mostInSession = 0;
    stats.clientResets = [];
  }
  const text = JSON.stringify(stats);
  res.writeHead(200, {"content-type": "application/json", "content-length": Buffer.byteLength(text),
                      "connection": "close"});
  res.end(text);
});
server.listen(0, "127.0.0.1", () =>
  control.listen(0, "127.0.0.1", () =>
    console.log("PORT " + server.address().port + " CONTROL " + control.address().port)));
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
