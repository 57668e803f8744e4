#!/usr/bin/env node
// fun-smoke.js - runs a Lambda "provided" runtime (a directory holding an
// executable `bootstrap`) under @vercel/fun, which serves the real Lambda
// Runtime API to it, and invokes it once per payload file.
//
// Usage: node fun-smoke.js [--out FILE] [--concurrent] [--env NAME=VALUE]...
//                          CODE_DIR PAYLOAD_FILE...
// Prints one JSON line per invocation, in the order of the payload files:
//   {"StatusCode": 200, "FunctionError": null|"Handled"|"Unhandled",
//    "Payload": <the response parsed as JSON, or the raw string>}
// The bootstrap inherits this process's stdout and stderr (fun spawns it
// that way), so with --out FILE the lines go to FILE instead, away from
// whatever the bootstrap prints.  --concurrent starts every invocation at
// once (fun keeps at most 10 runtime processes).
'use strict';

const fs = require('fs');
const path = require('path');

function usage(msg) {
	process.stderr.write(`fun-smoke.js: ${msg}\nusage: node fun-smoke.js [--out FILE] [--concurrent] ` +
		'[--env NAME=VALUE]... CODE_DIR PAYLOAD_FILE...\n');
	process.exit(2);
}

const args = process.argv.slice(2);
const env = {};
let out = null;
let concurrent = false;
while (args.length && args[0].startsWith('--')) {
	const opt = args.shift();
	if (opt === '--out' && args.length) out = args.shift();
	else if (opt === '--concurrent') concurrent = true;
	else if (opt === '--env' && args.length && args[0].includes('=')) {
		const kv = args.shift();
		env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
	} else usage(`bad option ${opt}`);
}
if (args.length < 2) usage('need CODE_DIR and at least one PAYLOAD_FILE');
const [codeDir, ...payloadFiles] = args;

const { createFunction } = require('@vercel/fun');

function describe(result) {
	let payload = String(result.Payload);
	try {
		payload = JSON.parse(payload);
	} catch (e) {
		// not JSON: keep the string
	}
	return { StatusCode: result.StatusCode, FunctionError: result.FunctionError || null, Payload: payload };
}

async function main() {
	const fn = await createFunction({
		Code: { Directory: path.resolve(codeDir) },
		Handler: 'bootstrap',
		Runtime: 'provided',
		FunctionName: 'hypertest-fun-smoke',
		Region: process.env.AWS_REGION || 'us-east-1',
		AccessKeyId: process.env.AWS_ACCESS_KEY_ID || 'AKIDEXAMPLE',
		SecretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || 'unused',
		MemorySize: 512,
		Timeout: 900,
		Environment: { Variables: env },
	});
	try {
		const call = (file) => fn.invoke({ InvocationType: 'RequestResponse', Payload: fs.readFileSync(file, 'utf8') });
		let results = [];
		if (concurrent) results = await Promise.all(payloadFiles.map(call));
		else for (const f of payloadFiles) results.push(await call(f));
		const text = results.map((r) => JSON.stringify(describe(r)) + '\n').join('');
		if (out) fs.writeFileSync(out, text);
		else process.stdout.write(text);
	} finally {
		await fn.destroy();
	}
}

main().catch((err) => {
	process.stderr.write(`fun-smoke.js: ${err.stack || err}\n`);
	process.exit(1);
});
