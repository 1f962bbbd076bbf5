// The module's request path under V8 without Envoy: a minimal proxy-wasm host in Node.js, to
// time and profile tokengate's own work (`make bench-v8`, see BENCHMARKS.md). Not a test: host
// calls here cost what JavaScript costs, not what Envoy's cost.
//
// usage: node host.mjs <module.wasm> <plugin-config.json> <authorization-lines.txt> <requests>
// HOST_VERIFIES=1: the host offers `verify_signature` and says yes to every signature except the
//   module's self-test's tampered ones (so RS* and ES* go the host's way, as on Envoy 1.40).
// COUNT=1: also print the host calls per request.
// ANSWER=<file>: every callout is answered 200 with that JSON body, right after the request's
//   headers (the OAuth 1.0a case: the token service's answer about the access token).
// ONCE=1: every line is sent once (signed requests: each has its own nonce); the warm-up takes
//   the first lines, the timed requests the next ones.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [wasmPath, configPath, linesPath, countArg] = process.argv.slice(2);
const config = readFileSync(configPath);
const lines = readFileSync(linesPath, 'utf8').split('\n').filter(Boolean);
const requests = Number(countArg || 100000);
const selfTests = ['self_test_rsa_signature.bin', 'self_test_p256_signature.der', 'self_test_rsa_sha1_signature.bin',
  'self_test_rsa_1024_sha1_signature.bin', 'self_test_rsa_sha384_signature.bin', 'self_test_rsa_sha512_signature.bin']
  .map((name) => readFileSync(new URL(`../../crates/core/src/hostcrypto/${name}`, import.meta.url)));
// A self-test signature with its last byte changed.
const tampered = (sig) => selfTests.some((good) => sig.length === good.length
  && sig.subarray(0, -1).every((b, i) => b === good[i]) && sig.at(-1) !== good.at(-1));
const answer = process.env.ANSWER ? readFileSync(process.env.ANSWER) : null;
const once = Boolean(process.env.ONCE);
const HTTP_CALL_RESPONSE_HEADERS = 6, HTTP_CALL_RESPONSE_BODY = 4;
const callHeaders = [[':status', '200'], ['content-type', 'application/json']];
const PLUGIN_CONFIGURATION = 7, OK = 0, NOT_FOUND = 1, UNIMPLEMENTED = 12;
const enc = new TextEncoder(), dec = new TextDecoder();

let instance, memory;
const bytes = () => new Uint8Array(memory.buffer);
const view = () => new DataView(memory.buffer);
const text = (ptr, len) => dec.decode(bytes().subarray(ptr, ptr + len));
// Hands `data` to the module the ABI's way: in memory it allocates, pointer and size returned.
function give(data, retPtr, retSize) {
  const ptr = instance.exports.proxy_on_memory_allocate(data.length || 1);
  bytes().set(data, ptr);
  view().setUint32(retPtr, ptr, true);
  view().setUint32(retSize, data.length, true);
  return OK;
}
// proxy-wasm header map serialisation: count, (key length, value length)*, key\0value\0*.
function serialise(pairs) {
  const encoded = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  const size = 4 + encoded.length * 8 + encoded.reduce((s, [k, v]) => s + k.length + v.length + 2, 0);
  const out = new Uint8Array(size), d = new DataView(out.buffer);
  d.setUint32(0, encoded.length, true);
  let o = 4;
  for (const [k, v] of encoded) { d.setUint32(o, k.length, true); d.setUint32(o + 4, v.length, true); o += 8; }
  for (const [k, v] of encoded) { out.set(k, o); o += k.length + 1; out.set(v, o); o += v.length + 1; }
  return out;
}
// The signature (field 3) of a VerifySignatureArguments message.
function signatureOf(message) {
  let o = 0;
  const varint = () => { let v = 0, s = 0, b; do { b = message[o++]; v += (b & 0x7f) * 2 ** s; s += 7; } while (b & 0x80); return v; };
  while (o < message.length) {
    const key = varint(), len = varint();
    if (key >> 3 === 3) return message.subarray(o, o + len);
    o += len;
  }
  return new Uint8Array();
}

const shared = new Map();
let headers = [], localReplies = 0, nextToken = 1;
const calls_pending = [];
const host = {
  proxy_log: (level, p, n) => { if (process.env.LOG || level >= 4) console.error(`log ${level}: ${text(p, n)}`); return OK; },
  proxy_get_buffer_bytes: (type, start, max, rp, rs) => (type === PLUGIN_CONFIGURATION ? give(config, rp, rs)
    : type === HTTP_CALL_RESPONSE_BODY && answer ? give(answer.subarray(start, start + max), rp, rs) : NOT_FOUND),
  proxy_http_call: (up, un, hp, hn, bp, bn, tp, tn, timeout, ret) => {
    if (!answer) return UNIMPLEMENTED;
    const token = nextToken++;
    calls_pending.push(token);
    view().setUint32(ret, token, true);
    return OK;
  },
  proxy_define_metric: (type, p, n, ret) => { view().setUint32(ret, 1, true); return OK; },
  proxy_increment_metric: () => OK,
  proxy_set_tick_period_milliseconds: () => OK,
  proxy_get_current_time_nanoseconds: (ret) => { view().setBigUint64(ret, BigInt(Date.now()) * 1000000n, true); return OK; },
  proxy_get_header_map_pairs: (map, rp, rs) => give(serialise(map === HTTP_CALL_RESPONSE_HEADERS ? callHeaders : headers), rp, rs),
  proxy_get_header_map_value: (map, kp, kn, rp, rs) => {
    const found = (map === HTTP_CALL_RESPONSE_HEADERS ? callHeaders : headers).find(([n]) => n === text(kp, kn));
    return found ? give(enc.encode(found[1]), rp, rs) : NOT_FOUND;
  },
  proxy_replace_header_map_value: (map, kp, kn, vp, vn) => {
    const name = text(kp, kn);
    headers = headers.filter(([n]) => n !== name).concat([[name, text(vp, vn)]]);
    return OK;
  },
  proxy_remove_header_map_value: (map, kp, kn) => { const name = text(kp, kn); headers = headers.filter(([n]) => n !== name); return OK; },
  proxy_get_shared_data: (kp, kn, rp, rs, cas) => {
    const value = shared.get(text(kp, kn));
    if (!value) return NOT_FOUND;
    view().setUint32(cas, 1, true);
    return give(value, rp, rs);
  },
  proxy_set_shared_data: (kp, kn, vp, vn) => { shared.set(text(kp, kn), bytes().slice(vp, vp + vn)); return OK; },
  proxy_call_foreign_function: (np, nn, ap, an, rp, rs) => {
    if (!process.env.HOST_VERIFIES || text(np, nn) !== 'verify_signature') return NOT_FOUND;
    const refused = tampered(signatureOf(bytes().slice(ap, ap + an)));
    return give(new Uint8Array(refused ? [0x12, 1, 0x78] : [0x08, 1]), rp, rs);
  },
  proxy_send_local_response: () => { localReplies++; return OK; },
  proxy_get_property: () => NOT_FOUND,
  proxy_continue_stream: () => OK,
  proxy_close_stream: () => OK,
  proxy_done: () => OK,
  proxy_set_effective_context: () => OK,
};

const module = new WebAssembly.Module(readFileSync(wasmPath));
const wasi = new WASI({ version: 'preview1' });
const calls = new Map();
const imports = { env: {}, wasi_snapshot_preview1: wasi.wasiImport };
for (const { module: from, name } of WebAssembly.Module.imports(module)) {
  if (from !== 'env') continue;
  const f = host[name] || (() => UNIMPLEMENTED);
  imports.env[name] = process.env.COUNT ? (...args) => { calls.set(name, (calls.get(name) || 0) + 1); return f(...args); } : f;
}
instance = new WebAssembly.Instance(module, imports);
memory = instance.exports.memory;
wasi.initialize({ exports: { memory, _initialize: instance.exports._initialize } });
const x = instance.exports;
x.proxy_on_context_create(1, 0);
x.proxy_on_vm_start(1, 0);
if (!x.proxy_on_configure(1, config.length)) throw new Error('the module refused the configuration');

let nextContext = 2, continued = 0;
function request(authorization) {
  headers = [[':authority', '127.0.0.1:10000'], [':path', '/rest/api/2/myself'], [':method', 'GET'],
    [':scheme', 'http'], ['authorization', authorization], ['user-agent', 'wrk'],
    ['x-forwarded-proto', 'http'], ['x-request-id', '3b2d1a8c-1c3e-4a8e-9d7e-0f0c3b2d1a8c']];
  const id = nextContext++;
  x.proxy_on_context_create(id, 1);
  const paused = x.proxy_on_request_headers(id, headers.length, 1) !== 0;
  if (!paused) continued++;
  // Callouts start on the root's tick (no wake queue here); then their answers come.
  if (paused && answer) {
    x.proxy_on_tick(1);
    while (calls_pending.length) x.proxy_on_http_call_response(1, calls_pending.shift(), callHeaders.length, answer.length, 0);
  }
  x.proxy_on_done(id);
  x.proxy_on_log(id);
  x.proxy_on_delete(id);
}
// Warm-up: every line once (caches filled), then V8's optimising tier.
// ONCE: the first lines warm up, the next `requests` lines are timed (each sent once).
const warm = once ? lines.slice(0, Math.max(0, lines.length - requests)) : lines;
if (once && warm.length < 1000) throw new Error(`ONCE needs more than ${requests} + 1000 lines`);
for (const line of warm) request(line);
if (!once) for (let i = 0; i < Math.min(requests, 20000); i++) request(lines[i % lines.length]);
continued = 0; localReplies = 0; calls.clear();
const timed = once ? lines.slice(warm.length) : lines;
const start = process.hrtime.bigint();
for (let i = 0; i < requests; i++) request(timed[i % timed.length]);
const micros = Number(process.hrtime.bigint() - start) / 1000 / requests;
for (const [name, n] of calls) console.log(`${name}: ${(n / requests).toFixed(2)} per request`);
console.log(`${micros.toFixed(2)} us per request (module and this host), ${continued}/${requests} continued, ${localReplies} local replies`);
