// lambda-endpoint-h2.mjs - Lambda's Invoke over HTTP/2, for the h2 floor
// of bench/aws-invoke.sh (bench/invoke-floor.c h2): node's own http2
// server over TLS (ALPN h2; HTTP/1.1 too, for /_reset and /_stats).
//
//   node bench/lambda-endpoint-h2.mjs CERT.pem KEY.pem MAX_STREAMS WATCH_PID
//
// Prints "PORT N" once it listens on 127.0.0.1.  Each POST to
// .../invocations is answered 200 with a small JSON body delayMs after its
// request has arrived whole, every stream independently of the others;
// MAX_STREAMS (default 128) is the SETTINGS_MAX_CONCURRENT_STREAMS it
// announces.  POST /_reset {"delayMs": D} sets the delay and zeroes the
// counts; GET /_stats answers {"connections", "invocations",
// "mostInFlight"}.  It ends on SIGTERM (status 0), or once process
// WATCH_PID (the bench) is gone.
import fs from "node:fs";
import http2 from "node:http2";

const [cert, key, maxStreams, watchPid] = process.argv.slice(2);
let delayMs = 0, connections = 0, invocations = 0, inFlight = 0, mostInFlight = 0;

function readAll(stream, done) {
  const parts = [];
  stream.on("data", (d) => parts.push(d));
  stream.on("end", () => done(Buffer.concat(parts).toString()));
}

function answer(res, status, doc) {
  const text = JSON.stringify(doc);
  res.writeHead(status, {"content-type": "application/json", "content-length": Buffer.byteLength(text)});
  res.end(text);
}

const server = http2.createSecureServer({
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  allowHTTP1: true,
  settings: {maxConcurrentStreams: Number(maxStreams || 128), initialWindowSize: 1 << 20},
}, (req, res) => {
  const path = req.url.split("?")[0];
  if (req.method === "POST" && path === "/_reset") {
    readAll(req, (text) => {
      try {
        delayMs = Number(JSON.parse(text || "{}").delayMs || 0);
      } catch {
        return answer(res, 400, {message: "not JSON"});
      }
      connections = invocations = mostInFlight = 0;
      answer(res, 200, {delayMs});
    });
  } else if (req.method === "GET" && path === "/_stats") {
    answer(res, 200, {connections, invocations, mostInFlight});
  } else if (req.method === "POST" && path.endsWith("/invocations")) {
    inFlight++;
    mostInFlight = Math.max(mostInFlight, inFlight);
    readAll(req, () => setTimeout(() => {
      inFlight--;
      invocations++;
      if (!res.stream || !res.stream.destroyed)
        answer(res, 200, {success: true, name: "t00000", filePath: "tests"});
    }, delayMs));
  } else {
    answer(res, 404, {message: "no such resource"});
  }
});
server.on("secureConnection", () => connections++);
server.listen(0, "127.0.0.1", () => console.log("PORT " + server.address().port));
process.on("SIGTERM", () => process.exit(0));
setInterval(() => {
  try {
    process.kill(Number(watchPid), 0);
  } catch {
    process.exit(0);
  }
}, 1000).unref();
