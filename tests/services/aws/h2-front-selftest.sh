#!/bin/sh
# h2-front-selftest.sh - the self-test of h2-front.mjs (the HTTP/2 front of
# tests/e2e/aws-h2.sh), without hypertest: a small node HTTP/1.1 upstream,
# the front over h2c (prior knowledge) and over TLS (ALPN h2, a throwaway
# self-signed certificate made with openssl), and node's own http2 client:
# forwarding of a POST (body, headers, Host = :authority, the upstream's
# headers back without the hop-by-hop ones), SETTINGS_MAX_CONCURRENT_STREAMS
# (--max-streams), GOAWAY (--goaway-after), REFUSED_STREAM (--refuse-every,
# never twice for one request), an upstream reset or cut-short answer as
# RST_STREAM INTERNAL_ERROR, a stream the client resets, an HTTP/1.1 client
# turned away, the statistics and their reset, SIGTERM and --watch-pid;
# and --tls-h1 (HTTP/1.1 over TLS, the bytes as they are, each connection's
# ALPN offer printed).
#
#   tests/services/aws/h2-front-selftest.sh
#
# Exit 0 when all passed, 1 (saying what failed) otherwise, 77 (skipped)
# without node or openssl.
here=$(cd "$(dirname "$0")" && pwd) || exit 1
front="$here/h2-front.mjs"
command -v node >/dev/null 2>&1 || { echo "h2-front-selftest.sh: no node: skipped"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "h2-front-selftest.sh: no openssl: skipped"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/h2-front-selftest-XXXXXX") || exit 1
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
failed=0
bad() { echo "FAIL: $*"; failed=1; }

# start_bg OUT COMMAND...: COMMAND in the background, its stdout in OUT;
# its pid in $started and in the list cleanup ends; its port (the "PORT N"
# line) in $port within 10 s
start_bg() {
	out=$1
	shift
	: >"$out" # no port of the one before
	"$@" >"$out" 2>"$out.err" &
	started=$!
	pids="$pids $started"
	i=0
	while [ $i -lt 100 ]; do
		port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$out")
		[ -n "$port" ] && return 0
		kill -0 "$started" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	cat "$out.err"
	return 1
}

cat >"$tmp/upstream.mjs" <<'EOF'
// the upstream: /reset resets the connection, /truncate announces 100
// bytes and sends 50, /slow answers after 3 s, anything else echoes the
// request as JSON (with a hop-by-hop header the front must drop)
import http from "node:http";
const server = http.createServer((req, res) => {
  const parts = [];
  req.on("data", (d) => parts.push(d));
  req.on("end", () => {
    if (req.url === "/reset") return req.socket.resetAndDestroy();
    if (req.url === "/truncate") {
      res.writeHead(200, {"content-length": 100});
      res.write("x".repeat(50));
      return setTimeout(() => req.socket.destroy(), 50);
    }
    const text = JSON.stringify({method: req.method, url: req.url, headers: req.headers,
                                 body: Buffer.concat(parts).toString()});
    setTimeout(() => {
      res.writeHead(201, {"content-type": "application/json", "x-upstream": "yes",
                          "keep-alive": "timeout=5", "content-length": Buffer.byteLength(text)});
      res.end(text);
    }, req.url === "/slow" ? 3000 : 0);
  });
});
server.listen(0, "127.0.0.1", () => console.log("PORT " + server.address().port));
EOF

cat >"$tmp/check.mjs" <<'EOF'
// check.mjs URL CA|- CHECK ARG: one check against the front at URL; prints
// each failure, exits 1 on any
import fs from "node:fs";
import http2 from "node:http2";
import https from "node:https";
const [url, ca, check, arg] = process.argv.slice(2);
const opts = ca === "-" ? {} : {ca: fs.readFileSync(ca)};
let problems = 0;
const bad = (msg) => { console.log("FAIL: " + check + ": " + msg); problems++; };
const expect = (what, got, want) => { if (got !== want) bad(`${what}: ${JSON.stringify(got)}, not ${JSON.stringify(want)}`); };

function connect() {
  return new Promise((resolve, reject) => {
    const s = http2.connect(url, opts);
    s.once("error", reject);
    s.once("remoteSettings", () => resolve(s));
  });
}

// request(session, headers, body): {status, headers, body, rstCode}
function request(s, headers, body) {
  return new Promise((resolve) => {
    const r = s.request(headers);
    const out = {status: 0, headers: null, body: "", rstCode: 0, id: 0};
    r.on("response", (h) => { out.status = h[":status"]; out.headers = h; });
    r.on("data", (d) => out.body += d);
    r.on("error", () => {});
    r.on("ready", () => out.id = r.id);
    r.on("close", () => { out.rstCode = r.rstCode; out.id = r.id; resolve(out); });
    r.end(body);
  });
}
const post = (path, body) => ({":method": "POST", ":path": path});

async function stats(s) {
  const r = await request(s, {":path": "/__front/stats"});
  expect("GET /__front/stats status", r.status, 200);
  return JSON.parse(r.body);
}

async function main() {
  const s = await connect();
  const auth = new URL(url).host;
  let st;
  switch (check) {
  case "forward": {
    expect("the announced SETTINGS_MAX_CONCURRENT_STREAMS", s.remoteSettings.maxConcurrentStreams, 100);
    const r = await request(s, {":method": "POST", ":path": "/some/path?x=1&y=a%2Fb",
                                "x-amz-date": "20260101T000000Z", "content-type": "application/json",
                                "authorization": "AWS4-HMAC-SHA256 Credential=x"}, '{"payload": 1}');
    expect("status", r.status, 201);
    expect("the upstream's own header", r.headers["x-upstream"], "yes");
    expect("a hop-by-hop header", r.headers["keep-alive"], undefined);
    const up = JSON.parse(r.body);
    expect("method", up.method, "POST");
    expect("path and query", up.url, "/some/path?x=1&y=a%2Fb");
    expect("body", up.body, '{"payload": 1}');
    expect("host (= :authority)", up.headers.host, auth);
    expect("x-amz-date", up.headers["x-amz-date"], "20260101T000000Z");
    expect("authorization", up.headers.authorization, "AWS4-HMAC-SHA256 Credential=x");
    expect("content-length", up.headers["content-length"], "14");
    const g = await request(s, {":path": "/get"});
    expect("GET status", g.status, 201);
    expect("GET method", JSON.parse(g.body).method, "GET");
    st = await stats(s);
    expect("stats.streams", st.streams, 2);
    expect("stats.sessions", st.sessions, 1);
    expect("stats.mostInSession", st.mostInSession, 1);
    // a connection that only reads the statistics is not counted
    const s2 = await connect();
    expect("stats.sessions read on a connection of its own", (await stats(s2)).sessions, 1);
    s2.close();
    const z = await request(s, {":method": "POST", ":path": "/__front/reset"});
    expect("POST /__front/reset status", z.status, 200);
    st = await stats(s);
    for (const k of ["sessions", "streams", "mostInSession", "refused", "goawaySent",
                     "unprocessedAfterGoaway", "upstreamErrors", "resetByClient"])
      expect(`stats.${k} after the reset`, st[k], 0);
    break;
  }
  case "max-streams": {
    const n = Number(arg);
    expect("the announced SETTINGS_MAX_CONCURRENT_STREAMS", s.remoteSettings.maxConcurrentStreams, n);
    const all = await Promise.all(Array.from({length: 10 * n}, (_, i) => request(s, post("/m" + i), "m" + i)));
    expect("answered 201", all.filter((r) => r.status === 201).length, 10 * n);
    st = await stats(s);
    expect("stats.mostInSession", st.mostInSession, n);
    expect("stats.streams", st.streams, 10 * n);
    break;
  }
  case "goaway": {
    const k = Number(arg);
    let goaway = null;
    s.on("goaway", (code, last) => { if (!goaway) goaway = {code, last}; });
    s.on("error", () => {});
    const all = await Promise.all(Array.from({length: 2 * k}, (_, i) => request(s, post("/g" + i), "g" + i)));
    if (!goaway) { bad("no GOAWAY"); break; }
    expect("GOAWAY's code", goaway.code, http2.constants.NGHTTP2_NO_ERROR);
    expect("GOAWAY's last stream id (the K-th stream's)", goaway.last, 2 * k - 1);
    const served = all.filter((r) => r.id <= goaway.last), after = all.filter((r) => r.id > goaway.last);
    expect("streams up to the last answered", served.filter((r) => r.status === 201).length, k);
    expect("streams after it refused", after.filter((r) => !r.status &&
           r.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM).length, k);
    const s2 = await connect();
    st = await stats(s2);
    expect("stats.goawaySent", st.goawaySent, 1);
    expect("stats.unprocessedAfterGoaway", st.unprocessedAfterGoaway, k);
    expect("stats.streams", st.streams, k);
    s2.close();
    break;
  }
  case "refuse": {
    const m = Number(arg);
    // one at a time: every m-th refused, the others answered
    const seq = [];
    for (let i = 1; i <= 3 * m; i++) seq.push(await request(s, post("/r"), "r" + i));
    for (let i = 1; i <= 3 * m; i++) {
      const r = seq[i - 1], refused = i % m === 0;
      if (refused && (r.status || r.rstCode !== http2.constants.NGHTTP2_REFUSED_STREAM))
        bad(`stream ${i}: not refused (status ${r.status}, RST_STREAM ${r.rstCode})`);
      if (!refused && r.status !== 201) bad(`stream ${i}: refused (RST_STREAM ${r.rstCode})`);
    }
    // the request refused last, sent again as the next m-th: answered, and
    // the stream after it refused instead
    for (let i = 1; i < m; i++) await request(s, post("/r"), "again" + i);
    const again = await request(s, post("/r"), "r" + 3 * m);
    expect("a refused request sent again as the m-th", again.status, 201);
    const next = await request(s, post("/r"), "next");
    expect("the stream after it: RST_STREAM", next.rstCode, http2.constants.NGHTTP2_REFUSED_STREAM);
    st = await stats(s);
    expect("stats.refused", st.refused, 4);
    expect("stats.streams", st.streams, 3 * m - 3 + m);
    break;
  }
  case "upstream-errors": {
    const r = await request(s, post("/reset"), "x");
    expect("a reset upstream: status", r.status, 0);
    expect("a reset upstream: RST_STREAM", r.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
    const t = await request(s, post("/truncate"), "x");
    expect("a cut-short answer: its status", t.status, 200);
    expect("a cut-short answer: RST_STREAM", t.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
    if (t.body.length >= 100) bad("a cut-short answer came whole");
    const ok = await request(s, post("/after"), "x");
    expect("the session still serves", ok.status, 201);
    st = await stats(s);
    expect("stats.upstreamErrors", st.upstreamErrors, 2);
    expect("stats.resetByClient", st.resetByClient, 0);
    break;
  }
  case "client-reset": {
    const r = s.request(post("/slow"));
    r.on("error", () => {});
    r.end("x");
    await new Promise((res) => setTimeout(res, 300));
    r.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise((res) => setTimeout(res, 300));
    st = await stats(s);
    expect("stats.resetByClient", st.resetByClient, 1);
    expect("stats.upstreamErrors", st.upstreamErrors, 0);
    break;
  }
  case "http1": {
    // an HTTP/1.1 client over TLS: refused in the handshake (ALPN)
    s.close();
    const ok = await new Promise((resolve) => {
      const r = https.request(url + "h1", {...opts, method: "GET"}, (res) => { res.resume(); resolve(true); });
      r.on("error", () => resolve(false));
      r.end();
    });
    if (ok) bad("an HTTP/1.1 client got an answer");
    return;
  }
  default:
    bad("no such check");
  }
  s.close();
}
main().then(() => process.exit(problems ? 1 : 0), (e) => { bad(e.stack || String(e)); process.exit(1); });
EOF

start_bg "$tmp/upstream.out" node "$tmp/upstream.mjs" || { echo "FAIL: the upstream did not start"; exit 1; }
upstream="http://127.0.0.1:$port"

# check NAME [FRONT_ARGS...]: a new front (h2c, or TLS with $tls set), then
# check.mjs NAME; the front ended after
check() {
	name=$1
	shift
	arg=""
	case "$name" in
	max-streams) arg=4 && set -- "$@" --max-streams 4 ;;
	goaway) arg=5 && set -- "$@" --goaway-after 5 ;;
	refuse) arg=3 && set -- "$@" --refuse-every 3 ;;
	esac
	if [ -n "$tls" ]; then
		set -- "$@" --tls "$tmp/cert.pem" "$tmp/key.pem"
		url=https://127.0.0.1 ca=$tmp/cert.pem
	else
		url=http://127.0.0.1 ca=-
	fi
	if ! start_bg "$tmp/front.out" node "$front" --upstream "$upstream" "$@"; then
		bad "$name${tls:+ (TLS)}: the front did not start"
		return
	fi
	f=$started
	node "$tmp/check.mjs" "$url:$port/" "$ca" "$name" "$arg" || bad "$name${tls:+ (TLS)}"
	kill "$f" 2>/dev/null
	wait "$f" 2>/dev/null
}

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
	>"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log"; echo "FAIL: openssl"; exit 1; }

for tls in "" 1; do
	for c in forward max-streams goaway refuse upstream-errors client-reset; do
		check "$c"
	done
done
tls=1 check http1
tls=""

# h2c: an HTTP/1.1 request is no h2 preface: no answer
if start_bg "$tmp/front.out" node "$front" --upstream "$upstream"; then
	if curl -s -m 5 -o /dev/null "http://127.0.0.1:$port/h1" 2>/dev/null; then
		bad "h2c: an HTTP/1.1 client got an answer"
	fi
	# SIGTERM ends it with status 0
	kill -TERM "$started"
	wait "$started"
	rc=$?
	[ $rc -eq 0 ] || bad "SIGTERM: exit status $rc"
else
	bad "the front did not start"
fi

# --tls-h1: HTTP/1.1 over TLS to the upstream as it is, one CONN line per
# connection with the protocols offered by ALPN and the one chosen
if start_bg "$tmp/front.out" node "$front" --upstream "$upstream" --tls-h1 "$tmp/cert.pem" "$tmp/key.pem"; then
	body=$(curl -s -m 5 --http2 --cacert "$tmp/cert.pem" -H "X-Test: h1" "https://127.0.0.1:$port/h1?x=1") ||
		bad "--tls-h1: curl failed"
	curl -s -m 5 --http1.1 --cacert "$tmp/cert.pem" -o /dev/null "https://127.0.0.1:$port/again" ||
		bad "--tls-h1: curl --http1.1 failed"
	case "$body" in
	*'"url":"/h1?x=1"'*'"x-test":"h1"'*) ;;
	*) bad "--tls-h1: not the upstream's echo: $body" ;;
	esac
	conns=$(grep '^CONN ' "$tmp/front.out" | tr '\n' ';')
	[ "$conns" = "CONN offered=h2,http/1.1 chosen=http/1.1;CONN offered=http/1.1 chosen=http/1.1;" ] ||
		bad "--tls-h1: the connections seen: $conns"
	kill "$started" 2>/dev/null
	wait "$started" 2>/dev/null
else
	bad "--tls-h1: the front did not start"
fi

# --watch-pid: the front ends within 3 s of the process it watches
sleep 60 &
w=$!
pids="$pids $w"
if start_bg "$tmp/front.out" node "$front" --upstream "$upstream" --watch-pid "$w"; then
	f=$started
	kill "$w"
	i=0
	while kill -0 "$f" 2>/dev/null && [ $i -lt 30 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$f" 2>/dev/null && bad "--watch-pid: still running 3 s after the process ended"
else
	bad "the front did not start (--watch-pid)"
fi

# bad arguments: status 2
node "$front" --upstream ftp://x >/dev/null 2>&1
[ $? -eq 2 ] || bad "--upstream ftp://x not refused with status 2"
node "$front" >/dev/null 2>&1
[ $? -eq 2 ] || bad "no --upstream not refused with status 2"

if [ $failed -eq 0 ]; then
	echo "PASS: h2-front.mjs over h2c and TLS"
	exit 0
fi
exit 1
