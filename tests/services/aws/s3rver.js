#!/usr/bin/env node
// s3rver.js - runs the real s3rver (npm "s3rver", version 3) on 127.0.0.1 for
// the aws provider's tests.
//
// Usage: node s3rver.js [--watch-pid PID] DIR [BUCKET...]
//   DIR      where s3rver keeps buckets and objects
//   BUCKET   buckets to create at start
// Prints "PORT <n>" on stdout once it listens, then runs until killed (or
// until process PID is gone).  The access key in AWS_ACCESS_KEY_ID (default
// AKIDEXAMPLE) is added to s3rver's key registry, which by itself only knows
// S3RVER.  s3rver 3 does not verify Signature V4 (it only looks the key id
// up): put endpoint.py --s3-upstream in front of it to have signatures
// checked.
'use strict';

const path = require('path');
const S3rver = require('s3rver');
const AWSAccount = require('s3rver/lib/models/account');

function usage(msg) {
	process.stderr.write(`s3rver.js: ${msg}\nusage: node s3rver.js [--watch-pid PID] DIR [BUCKET...]\n`);
	process.exit(2);
}

const args = process.argv.slice(2);
let watchPid = 0;
if (args[0] === '--watch-pid') {
	watchPid = Number(args[1]);
	if (!Number.isInteger(watchPid) || watchPid <= 0) usage('--watch-pid needs a process id');
	args.splice(0, 2);
}
if (args.length < 1) usage('no directory');
const [dir, ...buckets] = args;

const keyId = process.env.AWS_ACCESS_KEY_ID || 'AKIDEXAMPLE';
AWSAccount.DUMMY_ACCOUNT.createKeyPair(keyId, process.env.AWS_SECRET_ACCESS_KEY || 'unused');

const server = new S3rver({
	address: '127.0.0.1',
	port: 0,
	silent: !process.env.HT_S3RVER_VERBOSE,
	directory: path.resolve(dir),
	configureBuckets: buckets.map((name) => ({ name })),
});

server.run().then((addr) => {
	process.stdout.write(`PORT ${addr.port}\n`);
	if (watchPid) {
		setInterval(() => {
			try {
				process.kill(watchPid, 0);
			} catch (e) {
				if (e.code === 'ESRCH') process.exit(0);
			}
		}, 500);
	}
}, (err) => {
	process.stderr.write(`s3rver.js: cannot start: ${err.message}\n`);
	process.exit(1);
});

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'])
	process.on(sig, () => process.exit(0));
