// What the host tests share: plugin configurations in README.md's format, real keys and JWTs
// signed in JavaScript, the upstream answers the tests give, and the checks every test ends with.
import assert from 'node:assert/strict';
import { generateKeyPairSync, createSign } from 'node:crypto';
import { Host } from './host.mjs';

export const ISSUER = 'https://idp.example';
export const AUDIENCE = 'jira';

/// An opaque-token provider checked by introspection (cluster `idp`), with a directory
/// callout (cluster `app`) unless `directory` is false (then everyone is active).
export function opaqueConfig({ directory = true, timeoutMs = 5000 } = {}) {
  return {
    realm: 'jira',
    oauth_providers: {
      kc: {
        introspection: { cluster: 'idp', path: '/introspect', client_id: 'tokengate', client_secret: 'client-secret' },
        audiences: [AUDIENCE],
        timeout_ms: timeoutMs,
      },
    },
    ...(directory ? { directory: { callout: { cluster: 'app', timeout_ms: timeoutMs } } } : {}),
  };
}

/// A JWT provider whose keys come from a remote JWKS (cluster `jwks`).
export function jwksConfig({ timeoutMs = 1000, waitMs = 300 } = {}) {
  return {
    realm: 'jira',
    jwt_providers: {
      idp: {
        issuer: ISSUER,
        remote_jwks: { cluster: 'jwks', path: '/jwks.json', timeout_ms: timeoutMs, wait_ms: waitMs },
      },
    },
  };
}

export function introspectionAnswer(host, user = 'fred') {
  return { active: true, username: user, aud: AUDIENCE, exp: Math.floor(host.now / 1000) + 3600 };
}

export function userAnswer(user = 'fred') {
  return { name: user, key: user, displayName: user, active: true };
}

/// A fresh RSA signing key with its `kid`.
export function signingKey(kid) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

export function jwks(...keys) {
  return { keys: keys.map((k) => k.jwk) };
}

const b64url = (data) => Buffer.from(data).toString('base64url');

/// An RS256 JWT by `key` for `sub`, valid for an hour of the host's clock.
export function jwt(host, key, sub = 'fred') {
  const now = Math.floor(host.now / 1000);
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: key.kid }));
  const body = b64url(JSON.stringify({ iss: ISSUER, sub, iat: now, exp: now + 3600 }));
  const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(key.privateKey);
  return `${head}.${body}.${b64url(signature)}`;
}

export function newHost() {
  return new Host();
}

/// The request was let through once, as `user`, with no local reply.
export function assertForwarded(request, user = 'fred') {
  assert.deepEqual(request.replies, [], `request ${request.id} got a local reply`);
  assert.equal(request.continued, 1, `request ${request.id} was let through ${request.continued} times`);
  assert.equal(request.upstreamHeader('x-tokengate-user'), user);
  assert.equal(request.upstreamHeader('authorization'), undefined, 'the credential went upstream');
}

/// The request got exactly one local reply, with `status` and `message`, and never went upstream.
export function assertRefused(request, status, message) {
  assert.equal(request.replies.length, 1, `request ${request.id} got ${request.replies.length} local replies`);
  assert.equal(request.continued, 0, `request ${request.id} went upstream`);
  assert.equal(request.reply.status, status);
  if (message) assert.equal(request.json().error.message, message);
}

/// What every test ends with: nothing failed in the host (no trap, no unexpected host call).
export function assertClean(host) {
  assert.deepEqual(host.failures, []);
}

/// Both question gauges of `vm` read 0 (the design's `tokengate.questions.*`).
export function assertIdle(vm) {
  for (const name of ['tokengate.questions.in_flight', 'tokengate.questions.waiting']) {
    assert.equal(vm.metricType(name), 'gauge', `${name} is a gauge`);
  }
  assert.equal(vm.metric('tokengate.questions.in_flight'), 0, 'gauge tokengate.questions.in_flight');
  assert.equal(vm.metric('tokengate.questions.waiting'), 0, 'gauge tokengate.questions.waiting');
}
