#!/usr/bin/env node
// dirhash-reference.js - the test-directory hash of DESIGN.md ("Test
// directory hash") computed the
// way the TypeScript hypertest computes it in Node, written from that
// description.  check_dirhash compares libhypertest's ht_dirhash() with it.
//
// Usage: node dirhash-reference.js DIR   -> prints the lowercase hex digest
// Exit status 2 with a message on stderr when DIR holds no file or cannot
// be read.
//
// Walk: readdirSync recursively; statSync follows symbolic links, so a link
// counts as the file it points to and a link to a directory is walked as a
// directory.  Only regular files count.  A directory that is its own
// ancestor (a link loop) is an error.  Names are read as Buffers so that a
// name that is not valid UTF-8 can still be opened; the path that is sorted
// and hashed is the name as Node's readdir decodes it (toString('utf8')).
'use strict';

const fs = require('fs');
const crypto = require('crypto');

function collect(root) {
	const files = []; // { rel: string, full: Buffer }
	const visit = (dir, rel, ancestors) => {
		const st = fs.statSync(dir, { bigint: true });
		const id = `${st.dev}:${st.ino}`;
		if (ancestors.includes(id))
			throw new Error(`symbolic link loop at ${dir.toString()}`);
		for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
			const full = Buffer.concat([dir, Buffer.from('/'), name]);
			const text = name.toString('utf8');
			const childRel = rel === '' ? text : `${rel}/${text}`;
			const cst = fs.statSync(full);
			if (cst.isDirectory())
				visit(full, childRel, [...ancestors, id]);
			else if (cst.isFile())
				files.push({ rel: childRel, full });
		}
	};
	visit(Buffer.from(root), '', []);
	return files;
}

function dirHash(root) {
	const files = collect(root);
	if (files.length === 0)
		throw new Error(`test directory ${root} contains no files`);
	// Relational operators on strings compare UTF-16 code units, exactly as
	// the default Array.prototype.sort does; names that decode to the same
	// string are ordered by their raw bytes.
	files.sort((a, b) =>
		(a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : Buffer.compare(a.full, b.full)));
	const hash = crypto.createHash('sha256');
	const nul = Buffer.from([0]);
	for (const f of files) {
		const content = fs.readFileSync(f.full).toString('utf8').replace(/\r\n/g, '\n');
		hash.update(Buffer.from(f.rel, 'utf8'));
		hash.update(nul);
		hash.update(Buffer.from(content, 'utf8'));
		hash.update(nul);
	}
	return hash.digest('hex');
}

if (process.argv.length !== 3) {
	process.stderr.write('usage: dirhash-reference.js DIR\n');
	process.exit(2);
}
try {
	process.stdout.write(`${dirHash(process.argv[2])}\n`);
} catch (e) {
	process.stderr.write(`dirhash-reference.js: ${e.message}\n`);
	process.exit(2);
}
