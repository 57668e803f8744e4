// config-loader.mjs - run by the hypertest program as
//   node --no-warnings --input-type=module --eval <this text> FILE PROJECT_DIR
// (never through a shell).  It imports FILE, a hypertest.config.{js,mjs,cjs,ts}
// of the TypeScript hypertest, with that project's npm packages replaced by
// stand-ins (a plugin factory returns {"plugin": NAME, "options": {...}}),
// maps the keys to hypertest's and writes its answer to file descriptor 3:
// "J" JSON NUL NOTE NUL NOTE ..., or "E" MESSAGE.  Standard output is
// left to the module: the program refuses a module that prints to it.  An
// exception of the module is not caught: node reports it on standard error,
// with its position, and the program shows that.
import Module, { register } from 'node:module';
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const file = process.argv[1];
const projectDir = process.argv[2];

function send(text) {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) off += writeSync(3, buf, off, buf.length - off);
}

class ConfigError extends Error {}
const bad = (msg) => {
  throw new ConfigError(msg);
};

// The packages of the TypeScript hypertest, under each name they had.
const CORE = ['@hypertest-cloud/core', '@hypertest-cloud/hypertest-core', '@hypertest/hypertest-core'];
const PLAYWRIGHT = [
  '@hypertest-cloud/plugin-playwright',
  '@hypertest-cloud/hypertest-plugin-playwright',
  '@hypertest/hypertest-plugin-playwright',
];
const AWS = [
  '@hypertest-cloud/provider-cloud-aws',
  '@hypertest-cloud/hypertest-provider-cloud-aws',
  '@hypertest/hypertest-provider-cloud-aws',
];

const factory = (plugin) =>
  `const f = (options = {}) => ({ plugin: ${JSON.stringify(plugin)}, options });\n` +
  `export default f; export const ${plugin} = f;\n`;
const esm = {};
for (const n of CORE) esm[n] = 'export const defineConfig = (c) => c;\nexport default { defineConfig };\n';
for (const n of PLAYWRIGHT) esm[n] = factory('playwright');
for (const n of AWS) esm[n] = factory('aws');
const dataUrl = (src) => `data:text/javascript,${encodeURIComponent(src)}`;
const map = Object.fromEntries(Object.entries(esm).map(([k, v]) => [k, dataUrl(v)]));

// require() of the same names from a .cjs configuration.
const cjs = {};
const cjsFactory = (plugin) => {
  const f = (options = {}) => ({ plugin, options });
  f.default = f;
  f[plugin] = f;
  return f;
};
for (const n of CORE) cjs[n] = { defineConfig: (c) => c };
for (const n of PLAYWRIGHT) cjs[n] = cjsFactory('playwright');
for (const n of AWS) cjs[n] = cjsFactory('aws');
const realRequire = Module.prototype.require;
Module.prototype.require = function (id) {
  if (Object.hasOwn(cjs, id)) return cjs[id];
  return realRequire.apply(this, arguments);
};

// Hooks (in node's loader thread): the stand-ins, TypeScript, and a .js
// configuration written as an ES module in a package that is not one.
const hooks = `
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as mod from 'node:module';
import vm from 'node:vm';
const map = ${JSON.stringify(map)};
const configUrl = ${JSON.stringify(pathToFileURL(file).href)};
const projectDir = ${JSON.stringify(projectDir)};
export async function resolve(spec, ctx, next) {
  if (Object.hasOwn(map, spec)) return { url: map[spec], shortCircuit: true };
  return next(spec, ctx);
}
function stripTypes(url) {
  const src = readFileSync(new URL(url), 'utf8');
  if (typeof mod.stripTypeScriptTypes === 'function')
    return mod.stripTypeScriptTypes(src, { mode: 'transform', sourceUrl: url });
  let ts;
  try {
    ts = createRequire(projectDir + '/')('typescript');
  } catch {
    throw new Error('[hypertest] node ' + process.version + ' cannot read TypeScript by itself (node 22.13 or ' +
      'newer can), and the project has no typescript package (npm install --save-dev typescript)');
  }
  const out = ts.transpileModule(src, { fileName: new URL(url).pathname, reportDiagnostics: false,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: false } });
  return out.outputText;
}
export async function load(url, ctx, next) {
  if (url.startsWith('file:') && /\\.m?ts$/.test(url))
    return { format: 'module', source: stripTypes(url), shortCircuit: true };
  const r = await next(url, ctx);
  if (url === configUrl && r.format === 'commonjs' && url.endsWith('.js')) {
    const src = readFileSync(new URL(url), 'utf8');
    try {
      new vm.Script('(function (exports, require, module, __filename, __dirname) {' + src + '\\n})');
    } catch (e) {
      if (e instanceof SyntaxError) return { format: 'module', source: src, shortCircuit: true };
    }
  }
  return r;
}
`;

// ---- the configuration as hypertest's JSON ----------------------------------

const notes = [];
const LEVELS = { error: 'error', warn: 'warning', info: 'info', http: 'info', verbose: 'debug', debug: 'debug', silly: 'debug' };

function kindOf(v) {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'bigint') return 'a BigInt';
  if (typeof v === 'symbol') return 'a symbol';
  const proto = Object.getPrototypeOf(v);
  return `a ${(proto && proto.constructor && proto.constructor.name) || 'non-plain'} object`;
}

// A JSON value from a JavaScript one; errors name the key.
function plain(v, path, seen) {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) bad(`key '${path}': ${v} is not a JSON number`);
    return v;
  }
  if (typeof v !== 'object') bad(`key '${path}': ${kindOf(v)} cannot be written as JSON`);
  if (seen.has(v)) bad(`key '${path}': the value contains itself`);
  seen.add(v);
  let out;
  if (Array.isArray(v)) {
    out = v.map((x, i) => {
      if (x === undefined) bad(`key '${path}[${i}]': undefined cannot be written as JSON`);
      return plain(x, `${path}[${i}]`, seen);
    });
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) bad(`key '${path}': ${kindOf(v)} cannot be written as JSON`);
    out = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue; // as JSON.stringify does
      out[k] = plain(x, path ? `${path}.${k}` : k, seen);
    }
  }
  seen.delete(v);
  return out;
}

function section(v, key) {
  if (v && typeof v === 'object' && typeof v.handler === 'function' && typeof v.name === 'string')
    bad(`key '${key}': the plugin '${v.name}' of the TypeScript hypertest itself, not a stand-in: ` +
      `import its factory by the package name (${key === 'testRunner' ? PLAYWRIGHT[0] : AWS[0]}) ` +
      'so that hypertest can read it');
  return plain(v, key, new Set());
}

function convert(cfg) {
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg))
    bad(`the default export is ${cfg === null ? 'null' : Array.isArray(cfg) ? 'an array' : kindOf(cfg)}, ` +
      'not a configuration object (export default defineConfig({...}))');
  const out = {};
  for (const [k, v] of Object.entries(cfg)) {
    if (v === undefined) continue;
    if (k === 'loggerOptions') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(`key 'loggerOptions': expected an object, got ${JSON.stringify(v)}`);
      for (const [lk, lv] of Object.entries(v)) {
        if (lk !== 'level') {
          notes.push(`loggerOptions.${lk} is not used: hypertest writes its own log (logLevel, --quiet and --verbose set how much)`);
          continue;
        }
        if (!Object.hasOwn(LEVELS, lv))
          bad(`key 'loggerOptions.level': expected one of ${Object.keys(LEVELS).join(', ')}, got ${JSON.stringify(lv)}`);
        if (Object.hasOwn(cfg, 'logLevel')) {
          notes.push(`loggerOptions.level is not used: logLevel is set too`);
          continue;
        }
        if (LEVELS[lv] !== lv) notes.push(`loggerOptions.level "${lv}" is logLevel "${LEVELS[lv]}"`);
        out.logLevel = LEVELS[lv];
      }
    } else if (k === 'testRunner' || k === 'cloudProvider') {
      out[k] = section(v, k);
    } else {
      out[k] = plain(v, k, new Set());
    }
  }
  if (!Object.hasOwn(out, 'concurrency')) {
    out.concurrency = 1;
    notes.push('concurrency is not set: 1, the default of the TypeScript hypertest (hypertest\'s own is 30)');
  }
  return out;
}

// ---- main -----------------------------------------------------------------------------

try {
  if (typeof register !== 'function')
    bad(`node ${process.version} is too old to read it: hypertest needs node 18.19 or newer`);
  register(dataUrl(hooks));
  const ns = await import(pathToFileURL(file).href);
  let cfg = ns.default;
  if (cfg && typeof cfg === 'object' && cfg.__esModule && 'default' in cfg) cfg = cfg.default;
  // (a CommonJS module that sets nothing exports {})
  if (cfg === undefined || (cfg && Object.getPrototypeOf(cfg) === Object.prototype && Object.keys(cfg).length === 0))
    bad(`it exports no configuration: it needs "export default defineConfig({...})" (or "module.exports = {...}")`);
  cfg = await cfg;
  send(['J' + `${JSON.stringify(convert(cfg), null, 2)}\n`, ...notes].join('\0'));
} catch (e) {
  // the hooks' own errors come from another thread, marked
  if (e instanceof Error && e.message.startsWith('[hypertest] ')) send('E' + e.message.slice(12));
  else if (!(e instanceof ConfigError)) throw e;
  else send('E' + e.message);
}
process.exit(0);
