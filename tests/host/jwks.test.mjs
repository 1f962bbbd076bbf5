// Requests waiting for a remote JWKS under the scripted host: one waiter timing out while
// another keeps waiting, answers that come after the request was answered, and two workers
// (two VMs on one shared-data store) racing for the fetch lease and seeing one rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  newHost, jwksConfig, signingKey, jwks, jwt, assertForwarded, assertRefused, assertClean, assertIdle,
} from './fixtures.mjs';

const KEYS_UNAVAILABLE = 'Service Unavailable: The signing keys could not be loaded.';
const INVALID = 'Token Invalid: Error while validating the token.';

test('a request whose wait for the keys runs out gets the keys-unavailable answer while one that came later is answered when the keys come', () => {
  const host = newHost();
  const key = signingKey('k1');
  const vm = host.addVm(jwksConfig({ timeoutMs: 1000, waitMs: 300 }));
  const a = vm.request({ authorization: `Bearer ${jwt(host, key)}` });
  assert.equal(a.state, 'paused', 'A waits for the first JWKS');
  host.advance(200);
  const fetch = host.only('jwks');
  assert.equal(fetch.header(':path'), '/jwks.json');
  const b = vm.request({ authorization: `Bearer ${jwt(host, key, 'jsmith')}` });
  host.advance(150); // A has waited 350 ms, B 150 ms
  assertRefused(a, 503, KEYS_UNAVAILABLE);
  assert.equal(b.state, 'paused', 'B keeps waiting');
  host.advance(100);
  host.answer(fetch, { body: jwks(key) });
  assertForwarded(b, 'jsmith');
  assertRefused(a, 503, KEYS_UNAVAILABLE); // still one reply
  assert.equal(vm.metric('tokengate.denied.keys_unavailable'), 1);
  assert.equal(vm.metric('tokengate.jwks.fetch_ok'), 1);
  assertClean(host);
});

test('keys that arrive after the waiting requests were answered are used by the next request and answer no one twice', () => {
  const host = newHost();
  const key = signingKey('k1');
  const vm = host.addVm(jwksConfig({ timeoutMs: 1000, waitMs: 300 }));
  const kept = vm.request({ authorization: `Bearer ${jwt(host, key)}` });
  const gone = vm.request({ authorization: `Bearer ${jwt(host, key)}` });
  host.advance(400);
  assertRefused(kept, 503, KEYS_UNAVAILABLE);
  assertRefused(gone, 503, KEYS_UNAVAILABLE);
  vm.end(gone); // answered and finished, as Envoy finishes a local reply
  host.answer(host.only('jwks'), { body: jwks(key) });
  host.advance(1000);
  assert.equal(kept.replies.length, 1, 'no second reply');
  assert.equal(kept.continued, 0, 'an answered request is not let through afterwards');
  assert.equal(gone.replies.length, 1);
  const next = vm.request({ authorization: `Bearer ${jwt(host, key)}` });
  assertForwarded(next);
  vm.end(kept);
  vm.end(next);
  assertIdle(vm);
  assertClean(host);
});

test('two workers fetch the JWKS once between them and both verify with the keys it brought', () => {
  const host = newHost();
  const key = signingKey('k1');
  const workers = [host.addVm(jwksConfig()), host.addVm(jwksConfig())];
  const waiting = workers.map((vm) => vm.request({ authorization: `Bearer ${jwt(host, key)}` }));
  host.advance(200); // within the requests' wait for keys (300 ms)
  const fetches = host.pending('jwks');
  assert.equal(fetches.length, 1, `${fetches.length} JWKS fetches for one Envoy process`);
  host.answer(fetches[0], { body: jwks(key) });
  host.advance(200); // the other worker learns of the keys (by its tick at the latest)
  for (const request of waiting) assertForwarded(request);
  for (const vm of workers) assertForwarded(vm.request({ authorization: `Bearer ${jwt(host, key, 'jsmith')}` }), 'jsmith');
  assert.equal(host.callouts.filter((c) => c.cluster === 'jwks').length, 1);
  assert.equal(host.metric('tokengate.jwks.fetch_ok'), 1);
  assert.equal(host.metric('tokengate.allowed'), 4);
  assertClean(host);
});

test('a key rotation seen by one worker is seen by the other before it answers again', () => {
  const host = newHost();
  const [oldKey, newKey] = [signingKey('old'), signingKey('new')];
  const [first, second] = [host.addVm(jwksConfig()), host.addVm(jwksConfig())];
  host.advance(200);
  for (const fetch of host.pending('jwks')) host.answer(fetch, { body: jwks(oldKey) });
  const oldToken = `Bearer ${jwt(host, oldKey)}`;
  assertForwarded(first.request({ authorization: oldToken }));
  assertForwarded(second.request({ authorization: oldToken }));
  const before = host.callouts.filter((c) => c.cluster === 'jwks').length;

  // The provider rotates: the new key replaces the old one. The first worker sees a new-key
  // token, refetches and verifies it.
  host.advance(60_000);
  const newToken = `Bearer ${jwt(host, newKey)}`;
  const seen = first.request({ authorization: newToken });
  host.advance(200);
  const refetch = host.pending('jwks');
  assert.equal(refetch.length, 1, 'one refetch for the unknown kid');
  host.answer(refetch[0], { body: jwks(newKey) });
  host.advance(100);
  assertForwarded(seen);

  // The second worker answers with the new set without fetching it again: the removed key no
  // longer verifies there (nor its cached verdict), the new one does.
  assertRefused(second.request({ authorization: oldToken }), 400, INVALID);
  assertForwarded(second.request({ authorization: `Bearer ${jwt(host, newKey, 'jsmith')}` }), 'jsmith');
  assertRefused(first.request({ authorization: oldToken }), 400, INVALID);
  assert.equal(host.callouts.filter((c) => c.cluster === 'jwks').length, before + 1, 'one fetch per rotation');
  assert.equal(host.metric('tokengate.denied.invalid_token'), 2);
  assertClean(host);
});

test('a plugin reload while its worker holds the fetch lease releases it: a request waiting on another worker gets the keys, not the 503', () => {
  const host = newHost();
  const key = signingKey('k1');
  // A slow key server: the lease (timeout + 1 s) outlasts a request's wait for keys.
  const config = jwksConfig({ timeoutMs: 5000, waitMs: 3000 });
  const [leader, other] = [host.addVm(config), host.addVm(config)];
  host.advance(100);
  const fetch = host.only('jwks');
  assert.equal(fetch.vm, leader);
  const waiting = other.request({ authorization: `Bearer ${jwt(host, key)}` });
  leader.stop(); // the reload: the root context is done, its fetch cancelled
  host.advance(200); // the other worker's next ticks
  const takeover = host.only('jwks');
  assert.equal(takeover.vm, other, 'the released lease is taken at the next tick');
  host.answer(takeover, { body: jwks(key) });
  assertForwarded(waiting);
  assertClean(host);
});

test('two workers taking the fetch lease at the same moment (one reads, the other writes in between) fetch once', () => {
  const host = newHost();
  const key = signingKey('k1');
  const [first, second] = [host.addVm(jwksConfig()), host.addVm(jwksConfig())];
  let raced = false;
  // When the first worker writes a JWKS head (taking the lease with the version it read), the
  // second one runs its tick first, having read the same version.
  host.beforeSharedSet = (name, vm) => {
    if (raced || vm !== first || !/^tokengate\.jwks\.[0-9a-f]+\.head$/.test(name)) return;
    raced = true;
    second.tick();
  };
  const waiting = [first, second].map((vm) => vm.request({ authorization: `Bearer ${jwt(host, key)}` }));
  host.advance(200); // within the requests' wait for keys (300 ms)
  assert.ok(raced, 'the first worker wrote the shared JWKS head');
  const fetches = host.callouts.filter((c) => c.cluster === 'jwks');
  assert.equal(fetches.length, 1,
    `one fetch, by the winner of the CAS (fetched by workers ${fetches.map((c) => c.vm.index)})`);
  host.answer(fetches[0], { body: jwks(key) });
  host.advance(200);
  for (const request of waiting) assertForwarded(request);
  assertClean(host);
});
