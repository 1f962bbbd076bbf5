// Requests that wait for one question (introspection, then the directory), under the scripted
// host: the hang, owners that hang up, and every callout owned by the root context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  newHost, opaqueConfig, introspectionAnswer, userAnswer, assertForwarded, assertRefused, assertClean, assertIdle,
} from './fixtures.mjs';

const TOKEN = 'Bearer opaque-token-1';

test('two requests with one uncached opaque token are both answered when the second one\'s directory lookup comes after the first finished (the hang)', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig());
  const a = vm.request({ authorization: TOKEN });
  const b = vm.request({ authorization: TOKEN });
  assert.equal(host.pending('idp').length, 1, 'B joins A\'s introspection');
  host.advance(400);
  host.answer(host.only('idp'), { body: introspectionAnswer(host) });
  // A's lookup is answered first (one lookup for both, or one per request).
  host.answer(host.pending('app')[0], { body: userAnswer() });
  assertForwarded(a);
  vm.end(a);
  host.advance(1500);
  for (const lookup of host.pending('app')) host.answer(lookup, { body: userAnswer() });
  assertForwarded(b);
  vm.end(b);
  assert.equal(vm.metric('tokengate.introspection.callouts'), 1);
  assert.equal(vm.metric('tokengate.introspection.coalesced'), 1);
  assert.equal(vm.metric('tokengate.allowed'), 2);
  assertClean(host);
});

test('the first request hanging up while the directory lookups are out leaves the second one answered', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig());
  const a = vm.request({ authorization: TOKEN });
  const b = vm.request({ authorization: TOKEN });
  host.answer(host.only('idp'), { body: introspectionAnswer(host) });
  assert.ok(host.pending('app').length >= 1, 'the user is looked up');
  vm.end(a); // A's client hangs up before the directory answers
  host.advance(200);
  for (const lookup of host.pending('app')) host.answer(lookup, { body: userAnswer() });
  assertForwarded(b);
  assert.deepEqual(a.replies, []);
  assertClean(host);
});

test('the first asker hanging up while another request waits for the same answer leaves the other answered once', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig({ directory: false }));
  const a = vm.request({ authorization: TOKEN });
  const b = vm.request({ authorization: TOKEN });
  vm.end(a); // the client of A hangs up
  host.advance(200); // a tick or two: a question A's end cancelled is asked again
  const asked = host.pending('idp');
  assert.equal(asked.length, 1, 'one introspection is out for B');
  host.answer(asked[0], { body: introspectionAnswer(host) });
  assertForwarded(b);
  host.advance(5000);
  assert.equal(b.continued, 1, 'B was let through once');
  assert.deepEqual(b.replies, []);
  vm.end(b);
  assert.equal(vm.metric('tokengate.allowed'), 1);
  assertClean(host);
});

test('a request hanging up during its own uncoalesced introspection leaks nothing once the answer comes', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig({ directory: false }));
  const a = vm.request({ authorization: TOKEN });
  assert.equal(host.pending('idp').length, 1);
  vm.end(a);
  // A question owned by the root context outlives A; its answer is ignored.
  for (const callout of host.pending('idp')) host.answer(callout, { body: introspectionAnswer(host) });
  host.advance(1000);
  assert.deepEqual(a.replies, []);
  assertIdle(vm);
  assertClean(host);
});

test('a failed introspection answers every request waiting for it with the provider-unavailable reply, once', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig({ directory: false }));
  const a = vm.request({ authorization: TOKEN });
  const b = vm.request({ authorization: TOKEN });
  host.failCallout(host.only('idp'));
  for (const request of [a, b]) {
    assertRefused(request, 503, 'Service Unavailable: The token provider could not be reached.');
  }
  host.advance(10_000);
  assert.equal(a.replies.length + b.replies.length, 2);
  assert.equal(vm.metric('tokengate.introspection.failed.no_response'), 1);
  assert.equal(vm.metric('tokengate.denied.provider_unavailable'), 2);
  assertClean(host);
});

test('every callout the module dispatches belongs to the root context', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig());
  const a = vm.request({ authorization: TOKEN });
  const b = vm.request({ authorization: 'Bearer opaque-token-2' });
  for (const callout of host.pending('idp')) host.answer(callout, { body: introspectionAnswer(host) });
  for (const lookup of host.pending('app')) host.answer(lookup, { body: userAnswer() });
  assertForwarded(a);
  assertForwarded(b);
  assert.ok(host.callouts.length >= 3, `${host.callouts.length} callouts`);
  const fromRequests = host.fromHttpContexts().map((c) => `${c.cluster} ${c.header(':path')} from context ${c.contextId}`);
  assert.deepEqual(fromRequests, []);
  assertClean(host);
});

test('an idle worker reports no question in flight and no request waiting', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig());
  const a = vm.request({ authorization: TOKEN });
  host.answer(host.only('idp'), { body: introspectionAnswer(host) });
  host.answer(host.only('app'), { body: userAnswer() });
  assertForwarded(a);
  vm.end(a);
  // The answer is cached: a second request needs no callout.
  const again = vm.request({ authorization: TOKEN });
  assertForwarded(again);
  vm.end(again);
  assert.equal(host.pending().length, 0);
  assertIdle(vm);
  assertClean(host);
});

test('requests that arrive before the worker has dispatched anything share one introspection', () => {
  const host = newHost();
  host.autoSettle = false; // the wake queue is delivered only when the test steps the host
  const vm = host.addVm(opaqueConfig({ directory: false }));
  const requests = [1, 2, 3].map(() => vm.request({ authorization: TOKEN }));
  host.settle();
  host.answer(host.only('idp'), { body: introspectionAnswer(host) });
  host.settle();
  for (const request of requests) assertForwarded(request);
  assert.equal(vm.metric('tokengate.introspection.coalesced'), 2);
  assertClean(host);
});

test('a plugin reload while a question is in flight leaves the question gauges at 0', () => {
  const host = newHost();
  const old = host.addVm(opaqueConfig({ directory: false }));
  const a = old.request({ authorization: TOKEN });
  assert.equal(host.pending('idp').length, 1);
  old.end(a); // the client hung up: the question stays until its answer, which never comes now
  old.stop(); // the reload: its root context is done and deleted, its callouts cancelled
  assert.equal(host.pending('idp').length, 0);
  const fresh = host.addVm(opaqueConfig({ directory: false }));
  host.advance(1000);
  assertIdle(fresh);
  assertClean(host);
});
