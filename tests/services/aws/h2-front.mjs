// h2-front.mjs - an HTTP/2 front for an HTTP/1.1 server, for the tests of
// the aws provider's HTTP/2 client (tests/e2e/aws-h2.sh): every request
// that comes over HTTP/2 goes on to the upstream (endpoint.py) over
// HTTP/1.1, and its answer comes back on the stream.  Node's built-in
// modules only.
//
//   node h2-front.mjs --upstream http://127.0.0.1:PORT [--tls CERT KEY | --tls-h1 CERT KEY]
//        [--max-streams N] [--goaway-after K] [--refuse-every M] [--watch-pid PID]
//
// Listens on 127.0.0.1, port 0, and prints "PORT N" once it listens.
//   --tls CERT KEY    HTTPS with ALPN "h2" only (no HTTP/1.1: a client that
//                     does not speak h2 fails); without it h2c with prior
//                     knowledge (no Upgrade)
//   --tls-h1 CERT KEY HTTPS with ALPN "http/1.1" only, no HTTP/2: each
//                     connection's bytes go to the upstream as they are
//                     (HTTP/1.1 end to end, the signed Host unchanged), and
//                     the front prints "CONN offered=P1,P2 chosen=P" for
//                     each (the protocols the client offered by ALPN, the
//                     one chosen); none of the options below apply
//   --max-streams N   the SETTINGS_MAX_CONCURRENT_STREAMS announced (100)
//   --goaway-after K  on every connection, once its K-th stream has come,
//                     GOAWAY (NO_ERROR) with that stream's id as the last:
//                     the streams up to it are served, those the client
//                     opened after it are answered RST_STREAM
//                     REFUSED_STREAM and counted (unprocessedAfterGoaway)
//   --refuse-every M  every M-th stream overall is answered RST_STREAM
//                     REFUSED_STREAM without going upstream; a request
//                     (method, path and body alike) is refused once at
//                     most: when the M-th is one already refused, the next
//                     stream is refused instead
//   --watch-pid PID   end once process PID is gone (checked every second)
//
// A request goes upstream with its method, :path, body and headers, less
// the pseudo-headers, with Host set to :authority exactly (the upstream
// checks a Signature V4 over it), on keep-alive connections.  The
// upstream's status, headers (less the connection-specific ones) and body
// come back.  An upstream connection that fails, is reset or ends before
// the whole answer (endpoint.py's injected faults) ends the stream with
// RST_STREAM INTERNAL_ERROR, whether the headers went out or not.
//
// Served by the front itself, never forwarded, never counted, never
// refused: GET /__front/stats answers {"sessions" (connections, less
// those whose first stream was one of these two), "streams" (forwarded),
// "mostInSession" (the most streams open at once on one connection),
// "refused", "goawaySent", "unprocessedAfterGoaway", "upstreamErrors",
// "resetByClient" (streams the client reset, or left open on a connection
// it closed), "openSessions" (connections open now), "sessionErrors"
// (connections that ended in an error: not h2, a protocol error)}; POST
// /__front/reset zeroes them.  Ends on SIGTERM (status 0); bad arguments:
// status 2.
//
// nghttp2 drops the HEADERS of a stream opened after our GOAWAY without a
// word to node, so the front reads each connection's bytes on their way to
// node's HTTP/2 server (which takes the connection as a stream of ours) and
// counts those streams there.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import {Duplex} from "node:stream";
import tls from "node:tls";

const {
  NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR,
  HTTP2_HEADER_STATUS,
} = http2.constants;

function usage(msg) {
  process.stderr.write(`h2-front.mjs: ${msg}\nusage: node h2-front.mjs --upstream http://HOST:PORT ` +
    "[--tls CERT KEY | --tls-h1 CERT KEY] [--max-streams N] [--goaway-after K] [--refuse-every M] [--watch-pid PID]\n");
  process.exit(2);
}

function positive(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) usage(`${name} needs a positive integer`);
  return n;
}

const opt = {upstream: null, cert: null, key: null, h1: false, maxStreams: 100, goawayAfter: 0,
             refuseEvery: 0, watchPid: 0};
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const need = (k) => {
      if (i + k >= a.length) usage(`${a[i]} needs ${k} argument${k > 1 ? "s" : ""}`);
    };
    switch (a[i]) {
    case "--upstream": need(1); opt.upstream = a[++i]; break;
    case "--tls": need(2); opt.cert = a[++i]; opt.key = a[++i]; break;
    case "--tls-h1": need(2); opt.cert = a[++i]; opt.key = a[++i]; opt.h1 = true; break;
    case "--max-streams": need(1); opt.maxStreams = positive(a[i], a[++i]); break;
    case "--goaway-after": need(1); opt.goawayAfter = positive(a[i], a[++i]); break;
    case "--refuse-every": need(1); opt.refuseEvery = positive(a[i], a[++i]); break;
    case "--watch-pid": need(1); opt.watchPid = positive(a[i], a[++i]); break;
    default: usage(`unknown argument ${JSON.stringify(a[i])}`);
    }
  }
}
if (!opt.upstream) usage("--upstream is required");
let upstream;
try {
  upstream = new URL(opt.upstream);
} catch {
  usage("--upstream must be a URL");
}
if (upstream.protocol !== "http:") usage("--upstream must be an http:// URL");
const upPrefix = upstream.pathname.replace(/\/+$/, "");

const agent = new http.Agent({keepAlive: true, maxSockets: 4096, maxFreeSockets: 1024});

// hop-by-hop headers: never on an HTTP/2 stream, never forwarded
const CONNECTION_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade",
                                    "proxy-connection", "te", "http2-settings"]);

let stats;
function zero() {
  stats = {sessions: 0, streams: 0, mostInSession: 0, refused: 0, goawaySent: 0,
           unprocessedAfterGoaway: 0, upstreamErrors: 0, resetByClient: 0, sessionErrors: 0};
}
zero();
let openSessions = 0;
let arrived = 0;          // streams overall, for --refuse-every
let refuseOwed = 0;      // M-th streams that were not refused (refused before): the next are
const refusedOnce = new Set();

function answer(stream, status, doc) {
  const text = JSON.stringify(doc);
  if (stream.destroyed || stream.closed) return;
  stream.respond({[HTTP2_HEADER_STATUS]: status, "content-type": "application/json",
                  "content-length": Buffer.byteLength(text)});
  stream.end(text);
}

// the front's own paths: true when the stream was one of them
function control(stream, headers) {
  const method = headers[":method"], path = (headers[":path"] || "").split("?")[0];
  if (!path.startsWith("/__front/")) return false;
  stream.on("error", () => {});
  if (method === "GET" && path === "/__front/stats")
    answer(stream, 200, {...stats, openSessions});
  else if (method === "POST" && path === "/__front/reset") {
    stream.resume();
    zero();
    arrived = 0;
    refuseOwed = 0;
    refusedOnce.clear();
    answer(stream, 200, {reset: true});
  } else
    answer(stream, 404, {message: "no such path of the front"});
  return true;
}

function readBody(stream, done) {
  const parts = [];
  stream.on("data", (d) => parts.push(d));
  stream.on("end", () => done(Buffer.concat(parts)));
}

// RST_STREAM code, remembered so that the close is not taken for the
// client's.  Before the headers, stream.close(code); after them, never
// close() (it ends the writable side first: END_STREAM, then the
// RST_STREAM comes on a closed stream and a truncated body would look
// whole) but destroy() with an error: RST_STREAM INTERNAL_ERROR alone.
function resetStream(stream, code) {
  stream.ht.ourReset = true;
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent && code === NGHTTP2_INTERNAL_ERROR)
    stream.destroy(new Error("the upstream's answer broke off"));
  else
    stream.close(code);
}

function forward(stream, headers, body) {
  const h = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || CONNECTION_HEADERS.has(name)) continue;
    h[name] = value;
  }
  if (headers[":authority"] !== undefined) h.host = headers[":authority"];
  const method = headers[":method"];
  if (body.length || !["GET", "HEAD", "DELETE", "OPTIONS"].includes(method))
    h["content-length"] = String(body.length);
  else
    delete h["content-length"];
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    if (stream.ht.clientGone) return;
    stats.upstreamErrors++;
    resetStream(stream, NGHTTP2_INTERNAL_ERROR);
  };
  let req;
  try {
    req = http.request({host: upstream.hostname, port: upstream.port || 80, method,
                        path: upPrefix + headers[":path"], headers: h, agent});
  } catch {
    return fail();
  }
  stream.ht.upstream = req;
  req.on("error", fail);
  req.on("response", (res) => {
    res.on("error", fail);
    res.on("close", () => {
      if (!res.complete) fail();
    });
    if (stream.destroyed || stream.closed) {
      res.resume();
      return;
    }
    const out = {[HTTP2_HEADER_STATUS]: res.statusCode};
    for (const [name, value] of Object.entries(res.headers))
      if (!CONNECTION_HEADERS.has(name)) out[name] = value;
    try {
      stream.respond(out);
    } catch {
      res.resume();
      return fail();
    }
    res.on("data", (d) => {
      if (!failed && !stream.destroyed && !stream.closed && !stream.write(d)) {
        res.pause();
        stream.once("drain", () => res.resume());
      }
    });
    res.on("end", () => {
      if (!failed && !stream.destroyed && !stream.closed) stream.end();
    });
  });
  req.end(body);
}

function refuseKey(headers, body) {
  return crypto.createHash("sha256").update(String(headers[":method"])).update("\0")
    .update(String(headers[":path"])).update("\0").update(body).digest("hex");
}

// Streams of one connection, and what the client sent on it (tap).
function newConn() {
  return {open: 0, count: 0, lastStreamId: null, highest: 0, pending: [], seen: false, controlOnly: false,
          preface: 24, skip: 0, hdr: Buffer.alloc(9), hlen: 0};
}

// the frames the client sent (after the 24 bytes of the preface): each
// new stream's HEADERS
function tap(conn, b) {
  let i = 0;
  while (i < b.length) {
    let k;
    if (conn.preface > 0 || conn.skip > 0) {
      k = Math.min(conn.preface || conn.skip, b.length - i);
      if (conn.preface > 0) conn.preface -= k;
      else conn.skip -= k;
      i += k;
      continue;
    }
    k = Math.min(9 - conn.hlen, b.length - i);
    b.copy(conn.hdr, conn.hlen, i, i + k);
    conn.hlen += k;
    i += k;
    if (conn.hlen < 9) break;
    conn.hlen = 0;
    conn.skip = conn.hdr.readUIntBE(0, 3);
    const type = conn.hdr[3], id = conn.hdr.readUInt32BE(5) & 0x7fffffff;
    if (type !== 0x1 || id <= conn.highest) continue; // not a new stream's HEADERS
    conn.highest = id;
    if (conn.lastStreamId === null)
      conn.pending.push(id); // not yet seen by the session
    else if (id > conn.lastStreamId)
      stats.unprocessedAfterGoaway++;
  }
}

function onStream(session, stream, headers) {
  const s = session.ht;
  while (s.pending.length && s.pending[0] <= stream.id) s.pending.shift();
  const mine = (headers[":path"] || "").startsWith("/__front/");
  if (!s.seen) {
    // a connection opened to read the statistics is not one of the client's
    s.seen = true;
    s.controlOnly = mine;
    if (mine) stats.sessions--;
  } else if (s.controlOnly && !mine) {
    s.controlOnly = false;
    stats.sessions++;
  }
  if (control(stream, headers)) return;
  stream.ht = {ourReset: false, clientGone: false, upstream: null};
  s.open++;
  s.count++;
  stats.mostInSession = Math.max(stats.mostInSession, s.open);
  stream.on("error", () => {});
  stream.on("close", () => {
    s.open--;
    if (!stream.ht.ourReset && stream.rstCode !== NGHTTP2_NO_ERROR) {
      stream.ht.clientGone = true;
      stats.resetByClient++;
      if (stream.ht.upstream) stream.ht.upstream.destroy();
    }
  });
  if (s.lastStreamId !== null && stream.id > s.lastStreamId)
    // opened after the GOAWAY (counted by tap): not processed, the client may retry it
    return resetStream(stream, NGHTTP2_REFUSED_STREAM);
  if (opt.goawayAfter && s.count === opt.goawayAfter) {
    s.lastStreamId = stream.id;
    stats.goawaySent++;
    stats.unprocessedAfterGoaway += s.pending.filter((id) => id > stream.id).length;
    s.pending = [];
    session.goaway(NGHTTP2_NO_ERROR, stream.id);
  }
  arrived++;
  const mth = opt.refuseEvery && arrived % opt.refuseEvery === 0;
  readBody(stream, (body) => {
    if (stream.destroyed || stream.closed) return;
    if (mth || refuseOwed) {
      const key = refuseKey(headers, body);
      if (refusedOnce.has(key)) {
        // refused before: this one goes on, the next is refused instead
        if (mth) refuseOwed++;
      } else {
        if (!mth) refuseOwed--;
        refusedOnce.add(key);
        stats.refused++;
        return resetStream(stream, NGHTTP2_REFUSED_STREAM);
      }
    }
    stats.streams++;
    forward(stream, headers, body);
  });
}

// The HTTP/2 server proper takes each connection as a stream of our own
// (node wraps it), so that tap sees the client's bytes first.
const server = http2.createServer({settings: {maxConcurrentStreams: opt.maxStreams,
                                              initialWindowSize: 1 << 20},
                                   maxSessionMemory: 64});
let handing = null;
server.on("session", (session) => {
  session.ht = handing || newConn();
  stats.sessions++;
  openSessions++;
  session.on("error", () => stats.sessionErrors++);
  session.on("close", () => openSessions--);
  session.on("stream", (stream, headers) => onStream(session, stream, headers));
});

function hand(sock) {
  const conn = newConn();
  const d = new Duplex({
    read() {
      sock.resume();
    },
    write(chunk, encoding, done) {
      if (sock.destroyed) return done(new Error("the connection is closed"));
      sock.write(chunk, (e) => done(e || null));
    },
    final(done) {
      sock.end();
      done();
    },
    destroy(e, done) {
      sock.destroy();
      done(e);
    },
  });
  sock.setNoDelay(true);
  sock.on("data", (b) => {
    tap(conn, b);
    if (!d.push(b)) sock.pause();
  });
  sock.on("end", () => d.push(null));
  sock.on("error", (e) => d.destroy(e));
  sock.on("close", () => d.destroy());
  handing = conn;
  try {
    server.emit("connection", d); // emits "session" at once
  } finally {
    handing = null;
  }
}

// --tls-h1: TLS with ALPN http/1.1, the bytes piped to the upstream
function pipeH1(sock) {
  const up = net.connect(Number(upstream.port) || 80, upstream.hostname);
  sock.pipe(up);
  up.pipe(sock);
  sock.on("error", () => up.destroy());
  up.on("error", () => sock.destroy());
}

const front = opt.h1
  ? tls.createServer({cert: fs.readFileSync(opt.cert), key: fs.readFileSync(opt.key),
                      ALPNCallback: ({protocols}) => {
                        const chosen = protocols.includes("http/1.1") ? "http/1.1" : undefined;
                        process.stdout.write(`CONN offered=${protocols.join(",")} ` +
                                             `chosen=${chosen || "none"}\n`);
                        return chosen;
                      }}, pipeH1)
  : opt.cert
  ? tls.createServer({cert: fs.readFileSync(opt.cert), key: fs.readFileSync(opt.key),
                      ALPNProtocols: ["h2"]}, (sock) => {
    // ALPN h2 only: a client that offered none (or only http/1.1, which
    // the handshake already refused) is turned away
    if (sock.alpnProtocol !== "h2") return sock.destroy();
    hand(sock);
  })
  : net.createServer(hand);
front.on("tlsClientError", () => {});

front.on("error", (e) => {
  process.stderr.write(`h2-front.mjs: ${e.message}\n`);
  process.exit(1);
});
front.listen(0, "127.0.0.1", () => process.stdout.write(`PORT ${front.address().port}\n`));
process.on("SIGTERM", () => process.exit(0));
if (opt.watchPid) {
  setInterval(() => {
    try {
      process.kill(opt.watchPid, 0);
    } catch (e) {
      if (e.code === "ESRCH") process.exit(0);
    }
  }, 1000).unref();
}
