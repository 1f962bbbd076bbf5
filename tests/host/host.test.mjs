// The scripted host itself: Envoy's shared-data and shared-queue semantics, and a module that
// imports what the host does not offer or traps is a failure that names it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from './host.mjs';
import { newHost, opaqueConfig } from './fixtures.mjs';

const OK = 0, CAS_MISMATCH = 8;
const bytes = (text) => new TextEncoder().encode(text);

/// A wasm module of hand-written sections (id, content bytes).
function wasm(...sections) {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const [id, content] of sections) out.push(id, content.length, ...content);
  return new Uint8Array(out);
}
const name = (text) => [text.length, ...bytes(text)];
const VOID_TYPE = [1, [0x01, 0x60, 0x00, 0x00]];

test('shared data: cas 0 writes unconditionally, a stale cas is refused, a missing key is written whatever the cas', () => {
  const host = newHost();
  assert.equal(host.setShared('k', bytes('first'), 12345), OK, 'the cas is ignored on a missing key');
  const { cas } = host.getShared('k');
  assert.equal(host.setShared('k', bytes('second'), cas), OK);
  assert.equal(host.setShared('k', bytes('stale'), cas), CAS_MISMATCH);
  assert.equal(new TextDecoder().decode(host.getShared('k').value), 'second');
  assert.equal(host.setShared('k', bytes('forced'), 0), OK);
  assert.notEqual(host.getShared('k').cas, cas);
});

test('shared queues: the last registrant of a name is told of new items, when the host is stepped', () => {
  const host = newHost();
  const told = [];
  const worker = (index) => ({ alive: true, call: (...args) => told.push([index, ...args]) });
  const id = host.registerQueue('tokengate.wake.0123456789abcdef', worker(0), 1);
  assert.equal(host.registerQueue('tokengate.wake.0123456789abcdef', worker(1), 1), id, 'one queue per name');
  assert.equal(host.resolveQueue(host.vmId, 'tokengate.wake.0123456789abcdef'), id);
  assert.ok(host.enqueue(id, bytes('x')));
  assert.deepEqual(told, [], 'delivered asynchronously');
  host.settle();
  assert.deepEqual(told, [[1, 'proxy_on_queue_ready', 1, 1, id]]);
  assert.deepEqual(host.dequeue(id), bytes('x'));
  assert.equal(host.dequeue(id), null, 'empty');
  assert.equal(host.dequeue(id + 1), undefined, 'no such queue');
});

test('a callout whose context ends is cancelled and can no longer be answered', () => {
  const host = newHost();
  const vm = host.addVm(opaqueConfig());
  const a = vm.request({ authorization: 'Bearer opaque-token-1' });
  const owned = host.callouts.filter((c) => c.contextId === a.id);
  vm.end(a);
  for (const callout of owned) {
    assert.equal(callout.state, 'cancelled');
    assert.throws(() => host.answer(callout, { body: {} }), /cancelled/);
  }
  const survivors = host.callouts.filter((c) => c.contextId !== a.id);
  assert.ok(survivors.every((c) => c.state === 'pending'), 'callouts of other contexts are kept');
  assert.equal(owned.length + survivors.length, 1, 'one introspection');
});

test('a module importing what the host does not offer fails, naming the import', () => {
  const imports = [2, [0x01, ...name('env'), ...name('proxy_bogus'), 0x00, 0x00]];
  const host = new Host({ wasm: wasm(VOID_TYPE, imports) });
  assert.throws(() => host.addVm({}), /env\.proxy_bogus/);
  assert.match(host.failures.join('\n'), /proxy_bogus/);
});

test('a trap in the module fails, naming the callback', () => {
  const functions = [3, [0x01, 0x00]];
  const exports = [7, [0x01, ...name('_initialize'), 0x00, 0x00]];
  const code = [10, [0x01, 0x03, 0x00, 0x00, 0x0b]]; // unreachable
  const host = new Host({ wasm: wasm(VOID_TYPE, functions, exports, code) });
  assert.throws(() => host.addVm({}), /_initialize.*trapped: unreachable/);
  assert.equal(host.failures.length, 1);
});
