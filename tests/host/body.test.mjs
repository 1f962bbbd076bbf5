// Request bodies under the scripted host: an OAuth 1.0a form body read within its bound and its
// deadline (413 / 408, nothing waits forever, nothing left behind), and every body held until its
// request is decided (a chunk let through earlier would take the held headers upstream with it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createSign } from 'node:crypto';
import {
  newHost, opaqueConfig, introspectionAnswer, assertForwarded, assertClean, assertIdle,
} from './fixtures.mjs';
import { DATA, Host } from './host.mjs';

const FORM = ['content-type', 'application/x-www-form-urlencoded'];
const MAX_BYTES = 64, TIMEOUT_MS = 1000;

/// An OAuth 1.0a provider (cluster `ts`, the token service) on every path, with a small form bound.
function oauth1Config() {
  return {
    realm: 'jira',
    oauth1_providers: {
      applinks: {
        introspection: { cluster: 'ts', path: '/introspect', client_id: 'tokengate', client_secret: 'client-secret' },
        public_base_url: 'https://jira.example.com',
        form_body: { max_bytes: MAX_BYTES, timeout_ms: TIMEOUT_MS },
      },
    },
    rules: [{ path_prefix: '/', providers: ['applinks'] }],
  };
}

// RFC 5849 section 3.6: percent-encode everything but ALPHA, DIGIT, '-', '.', '_', '~'.
const encode = (text) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const consumer = generateKeyPairSync('rsa', { modulusLength: 1024 });
const CONSUMER_PUBLIC_KEY = consumer.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

/// `Authorization: OAuth ...` for a POST of `body` (a form) to `path`, signed with RSA-SHA1 by
/// the consumer (section 3.4.1: the method, the base URI, the oauth_* and form parameters).
function signed(host, path, body, nonce = 'nonce-1') {
  const oauth = {
    oauth_consumer_key: 'jira-cli', oauth_token: 'access-token-1', oauth_signature_method: 'RSA-SHA1',
    oauth_timestamp: String(Math.floor(host.now / 1000)), oauth_nonce: nonce, oauth_version: '1.0',
  };
  const pairs = [...Object.entries(oauth), ...new URLSearchParams(body)]
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  const normalised = pairs.map(([k, v]) => `${k}=${v}`).join('&');
  const base = ['POST', encode(`https://jira.example.com${path}`), encode(normalised)].join('&');
  const signature = createSign('RSA-SHA1').update(base).sign(consumer.privateKey, 'base64');
  const header = Object.entries({ ...oauth, oauth_signature: signature })
    .map(([k, v]) => `${k}="${encode(v)}"`).join(', ');
  return `OAuth realm="jira", ${header}`;
}

function accessTokenAnswer(host) {
  return {
    active: true, token_type: 'oauth1_access_token', username: 'fred', client_id: 'jira-cli',
    exp: Math.floor(host.now / 1000) + 3600, consumer_public_key: CONSUMER_PUBLIC_KEY,
  };
}

const PATH = '/rest/api/2/issue/DEMO-1/comment';
const BODY = 'body=Hello%20world&visibility=role%3AUsers&x=%E2%9C%93';

/// A form POST whose body the test sends (`open`), signed over `body`.
function post(vm, host, body = BODY, headers = []) {
  return vm.request({ method: 'POST', path: PATH, authorization: signed(host, PATH, body), headers: [FORM, ...headers], open: true });
}

/// Refused with `status` in Jira's error collection, never upstream, no body sent on.
function assertRefusedWith(request, status) {
  assert.equal(request.replies.length, 1, `request ${request.id} got ${request.replies.length} local replies`);
  assert.equal(request.reply.status, status);
  assert.equal(request.continued, 0, 'went upstream');
  assert.equal(request.upstreamBody.length, 0, 'body bytes went upstream');
  assert.deepEqual(Object.keys(request.json()), ['errorMessages', 'errors']);
}

test('a form body in two chunks is read at its end, the request decided with it, and the body goes upstream byte for byte', () => {
  const host = newHost();
  const vm = host.addVm(oauth1Config());
  const request = post(vm, host);
  assert.equal(request.state, 'paused');
  assert.equal(vm.sendBody(request, BODY.slice(0, 20)), DATA.STOP_AND_BUFFER);
  assert.equal(request.bodyReads, 0, 'not read before its end');
  assert.equal(host.callouts.length, 0, 'nothing asked before the body is whole');
  assert.equal(vm.sendBody(request, BODY.slice(20), { end: true }), DATA.STOP_AND_BUFFER, 'held for the question');
  assert.ok(request.bodyReads >= 1, 'read at its end');
  const question = host.only('ts');
  assert.match(question.body, /token_type_hint=oauth1_access_token/);
  host.answer(question, { body: accessTokenAnswer(host) });
  assertForwarded(request);
  assert.equal(request.upstreamText, BODY, 'the body upstream is the body sent');
  vm.end(request);
  assertIdle(vm);
  assertClean(host);
});

test('a Content-Length over form_body.max_bytes is refused 413 at the headers, with nothing awaited or asked', () => {
  const host = newHost();
  const vm = host.addVm(oauth1Config());
  const request = post(vm, host, BODY, [['content-length', String(MAX_BYTES + 1)]]);
  assertRefusedWith(request, 413);
  vm.sendBody(request, 'x'.repeat(MAX_BYTES + 1), { end: true });
  assert.equal(request.bodyReads, 0);
  assert.equal(host.callouts.length, 0);
  host.advance(TIMEOUT_MS * 2);
  assert.equal(request.replies.length, 1);
  assertIdle(vm);
  assertClean(host);
});

test('chunks that pass form_body.max_bytes are refused 413 as soon as they do', () => {
  const host = newHost();
  const vm = host.addVm(oauth1Config());
  const request = post(vm, host);
  vm.sendBody(request, 'a='.padEnd(MAX_BYTES, 'x'));
  assert.equal(request.state, 'paused', 'at the bound: still waiting');
  vm.sendBody(request, 'y');
  assertRefusedWith(request, 413);
  vm.sendBody(request, 'z', { end: true });
  assert.equal(request.replies.length, 1, 'answered once');
  assert.equal(host.callouts.length, 0);
  assertClean(host);
});

test('a body that never ends is answered 408 by the tick at form_body.timeout_ms, and never read', () => {
  const host = newHost();
  const vm = host.addVm(oauth1Config());
  const request = post(vm, host);
  vm.sendBody(request, BODY.slice(0, 10));
  host.advance(TIMEOUT_MS - 100);
  assert.equal(request.state, 'paused');
  host.advance(300); // the next ticks past the deadline
  assertRefusedWith(request, 408);
  vm.sendBody(request, BODY.slice(10), { end: true });
  assert.equal(request.bodyReads, 0);
  assert.equal(host.callouts.length, 0);
  assert.equal(vm.metric('tokengate.allowed'), 0);
  vm.end(request);
  assertIdle(vm);
  assertClean(host);
});

test('a request that ends while its body is awaited leaves nothing behind, and the next one is read as the first', () => {
  const host = newHost();
  const vm = host.addVm(oauth1Config());
  const gone = post(vm, host);
  vm.sendBody(gone, BODY.slice(0, 10));
  vm.end(gone);
  host.advance(TIMEOUT_MS * 2);
  assert.deepEqual(gone.replies, [], 'nothing is said to a request that is gone');
  assertIdle(vm);
  const next = post(vm, host);
  vm.sendBody(next, BODY, { end: true });
  host.answer(host.only('ts'), { body: accessTokenAnswer(host) });
  assertForwarded(next);
  assert.equal(next.upstreamText, BODY);
  assertClean(host);
});

test('the body of a request waiting for its token\'s introspection is held until the answer, then follows it unchanged', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig({ directory: false }));
  const request = vm.request({ method: 'POST', path: '/rest/api/2/issue', authorization: 'Bearer opaque-token-1', open: true });
  // Continuing this chunk would let Envoy send the held headers upstream before the answer.
  assert.equal(vm.sendBody(request, '{"fields":'), DATA.STOP_AND_BUFFER);
  assert.equal(request.continued, 0);
  host.answer(host.only('idp'), { body: introspectionAnswer(host) });
  assertForwarded(request);
  assert.equal(vm.sendBody(request, '{}}', { end: true }), DATA.CONTINUE, 'decided: the rest streams');
  assert.equal(request.upstreamText, '{"fields":{}}');
  assertClean(host);
});

test('the body of a request whose token turns out inactive never goes upstream', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig({ directory: false }));
  const request = vm.request({ method: 'POST', path: '/rest/api/2/issue', authorization: 'Bearer opaque-token-1', open: true });
  vm.sendBody(request, '{"fields":{}}', { end: true });
  assert.equal(request.continued, 0, 'held');
  host.answer(host.only('idp'), { body: { active: false } });
  assert.equal(request.replies.length, 1);
  assert.equal(request.reply.status, 401);
  assert.equal(request.continued, 0);
  assert.equal(request.upstreamBody.length, 0);
  assertClean(host);
});

test('trailers end a body that is awaited, and are held like the body until the decision', () => {
  const host = newHost();
  const vm = host.addVm(oauth1Config());
  const request = post(vm, host);
  vm.sendBody(request, BODY);
  assert.equal(host.callouts.length, 0);
  assert.equal(vm.sendTrailers(request), 1, 'StopIteration');
  assert.equal(request.continued, 0);
  host.answer(host.only('ts'), { body: accessTokenAnswer(host) });
  assertForwarded(request);
  assert.equal(request.upstreamText, BODY);
  assertClean(host);
});

test('without allow_on_headers_stop_iteration Envoy withholds a held request\'s body: the form gets its 408 and the log names the setting', () => {
  const host = new Host({ allowOnHeadersStopIteration: false });
  const vm = host.addVm(oauth1Config());
  const request = post(vm, host);
  assert.equal(vm.sendBody(request, BODY, { end: true }), undefined, 'no body callback');
  host.advance(TIMEOUT_MS + 200);
  assertRefusedWith(request, 408);
  assert.equal(host.callouts.length, 0);
  const warned = vm.logs.filter(({ level, message }) => level === 'warn' && message.includes('allow_on_headers_stop_iteration'));
  assert.equal(warned.length, 1, vm.logText());
  assertClean(host);
});
