// A scripted proxy-wasm ABI 0.2.1 host for the built tokengate.wasm (`make hosttest`): the test
// decides the order and the timing of every callout answer, context creation and destruction,
// and the clock. It behaves as Envoy does where the module can tell:
// - several VMs (Envoy's workers) are instances of one module, each with its own memory, sharing
//   ONE shared-data store (per vm_id) and ONE shared-queue registry;
// - shared data: `set` with cas 0 is unconditional, a cas other than the entry's is CasMismatch,
//   the cas is ignored on a key that does not exist yet; nothing is ever deleted;
// - shared queues are keyed by name (one vm_id); the last registrant of a name receives
//   `proxy_on_queue_ready`, delivered when the test steps the host (`settle`, `advance`);
// - a callout belongs to the EFFECTIVE context at dispatch (`proxy_set_effective_context`
//   changes it), is answered with `proxy_on_http_call_response(<that context>, token, ...)`, and
//   is cancelled (never answered) when that context ends; one the test leaves unanswered past its
//   timeout fails when the clock passes it, as Envoy's does;
// - ticks fire when the test advances the clock, which is the only time the module sees;
// - a request body comes in chunks (`sendBody`), each delivered with `proxy_on_request_body`
//   and the size of the whole buffer; a chunk the module stops with StopIterationAndBuffer is
//   buffered (the buffer is what `proxy_get_buffer_bytes` reads), one it continues goes upstream
//   with what was buffered, and continuing a chunk of a request whose headers are stopped lets
//   the headers go too (Envoy's filter manager); a buffer over Envoy's limit is Envoy's 413.
//   This is Envoy with the plugin's `allow_on_headers_stop_iteration: true` (1.35+), as the
//   README and every acceptance test configure it; `new Host({ allowOnHeadersStopIteration:
//   false })` is Envoy without it, which turns a paused header callback into
//   StopAllIterationAndWatermark: no body callback for a request whose headers are held.
// Any import this host does not know, any call of one it knows but does not expect (gRPC, ...),
// and any trap in the module throws an Error naming it, and is kept in `host.failures`.
import { readFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';

// TOKENGATE_WASM=<path>: run the tests against another build.
export const WASM = process.env.TOKENGATE_WASM
  || new URL('../../target/wasm32-wasip1/release/tokengate.wasm', import.meta.url);

const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, EMPTY = 7, CAS_MISMATCH = 8;
const MAP = { REQUEST_HEADERS: 0, CALL_RESPONSE_HEADERS: 6, CALL_RESPONSE_TRAILERS: 7 };
const BUFFER = { REQUEST_BODY: 0, CALL_RESPONSE_BODY: 4, VM_CONFIGURATION: 6, PLUGIN_CONFIGURATION: 7 };
// proxy_on_request_body's answers (FilterDataStatus); the trailers' are Continue / StopIteration.
export const DATA = { CONTINUE: 0, STOP_AND_BUFFER: 1, STOP_AND_WATERMARK: 2, STOP_NO_BUFFER: 3 };
/// Envoy's per_connection_buffer_limit_bytes default: a buffered body over it is answered 413.
export const ENVOY_BUFFER_LIMIT = 1024 * 1024;
const METRIC_TYPES = ['counter', 'gauge', 'histogram'];
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'critical'];
const enc = new TextEncoder(), dec = new TextDecoder();
const bytesOf = (data) => (typeof data === 'string' ? enc.encode(data) : new Uint8Array(data ?? []));

/// proxy-wasm header map serialisation: count, (key length, value length)*, key\0value\0*.
export function serialise(pairs) {
  const encoded = pairs.map(([k, v]) => [bytesOf(k), bytesOf(v)]);
  const size = 4 + encoded.length * 8 + encoded.reduce((s, [k, v]) => s + k.length + v.length + 2, 0);
  const out = new Uint8Array(size), d = new DataView(out.buffer);
  d.setUint32(0, encoded.length, true);
  let o = 4;
  for (const [k, v] of encoded) { d.setUint32(o, k.length, true); d.setUint32(o + 4, v.length, true); o += 8; }
  for (const [k, v] of encoded) { out.set(k, o); o += k.length + 1; out.set(v, o); o += v.length + 1; }
  return out;
}

export function deserialise(data) {
  const d = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = d.getUint32(0, true), sizes = [], pairs = [];
  for (let i = 0; i < count; i++) sizes.push([d.getUint32(4 + i * 8, true), d.getUint32(8 + i * 8, true)]);
  let o = 4 + count * 8;
  for (const [k, v] of sizes) {
    const key = dec.decode(data.subarray(o, o + k)); o += k + 1;
    const value = dec.decode(data.subarray(o, o + v)); o += v + 1;
    pairs.push([key, value]);
  }
  return pairs;
}

/// The imports the module may call that this host implements, and those it knows but that
/// tokengate must never call (a call is a failure naming it).
const UNEXPECTED_CALLS = ['proxy_grpc_call', 'proxy_grpc_stream', 'proxy_grpc_send', 'proxy_grpc_cancel',
  'proxy_grpc_close', 'proxy_set_buffer_bytes', 'proxy_set_property', 'proxy_get_status',
  'proxy_set_header_map_pairs'];

export class Host {
  constructor({ wasm = WASM, startMs = Date.UTC(2026, 11, 1, 12, 0, 0), vmId = 'tokengate', allowOnHeadersStopIteration = true } = {}) {
    this.allowOnHeadersStopIteration = allowOnHeadersStopIteration;
    this.module = new WebAssembly.Module(wasm instanceof Uint8Array ? wasm : readFileSync(wasm));
    this.vmId = vmId;
    this.now = startMs; // the test clock, milliseconds since the epoch
    this.vms = [];
    this.store = new Map(); // key -> { value: Uint8Array, cas }
    this.nextCas = 1;
    this.queues = new Map(); // name -> { id, vm, rootId, items }
    this.queueById = new Map();
    this.nextQueueId = 1;
    this.ready = []; // pending on_queue_ready: { vm, rootId, id }
    this.callouts = []; // every callout ever dispatched, in order
    this.failures = [];
    // Envoy's stats: one per metric name for the whole process (every VM defining a name gets
    // the same stat, so a counter or gauge is the sum over the workers).
    this.stats = new Map(); // name -> { name, type, value }
    // Whether every test action (request, answer, end, advance) delivers the queue
    // notifications it caused before it returns; `false`: the test calls `step`/`settle`.
    this.autoSettle = true;
    // Called as (key, vm, cas) before a `proxy_set_shared_data` is applied, so that a test can
    // run another worker in between a read and a write (a real race on one store).
    this.beforeSharedSet = null;
  }

  addVm(config, { vmConfig = '' } = {}) {
    const vm = new Vm(this, this.vms.length, config, vmConfig);
    this.vms.push(vm);
    vm.start();
    this.settleIfAuto();
    return vm;
  }

  fail(message) {
    this.failures.push(message);
    return new Error(message);
  }

  /// Delivers the oldest pending `on_queue_ready`; `false` if there was none.
  step() {
    const next = this.ready.shift();
    if (!next) return false;
    if (next.vm.alive) next.vm.call('proxy_on_queue_ready', next.rootId, next.rootId, next.id);
    return true;
  }

  settleIfAuto() {
    if (this.autoSettle) this.settle();
  }

  /// Delivers every pending `on_queue_ready` (and those they cause) until none is left.
  settle() {
    for (let i = 0; i < 10000 && this.step(); i++);
    if (this.ready.length) throw this.fail('on_queue_ready keeps being re-armed (10000 deliveries)');
  }

  /// Moves the clock `ms` forward: every tick and callout timeout due on the way fires at its
  /// own time, in time order (queues settled after each).
  advance(ms) {
    const target = this.now + ms;
    for (;;) {
      const ticks = this.vms.filter((vm) => vm.tickPeriod > 0 && vm.alive).map((vm) => [vm.nextTick, 'tick', vm]);
      const timeouts = this.callouts.filter((c) => c.state === 'pending').map((c) => [c.dispatchedAt + c.timeoutMs, 'timeout', c]);
      const next = [...ticks, ...timeouts].filter(([at]) => at <= target).sort((a, b) => a[0] - b[0])[0];
      if (!next) break;
      const [at, kind, what] = next;
      this.now = Math.max(this.now, at);
      if (kind === 'tick') {
        what.nextTick = at + what.tickPeriod;
        what.tick();
      } else {
        this.respond(what, null);
      }
      this.settleIfAuto();
    }
    this.now = target;
  }

  /// A metric's value for the whole process (undefined if no VM defined it).
  metric(name) {
    return this.stats.get(name)?.value;
  }

  /// Callouts not answered yet, optionally of one cluster.
  pending(cluster) {
    return this.callouts.filter((c) => c.state === 'pending' && (!cluster || c.cluster === cluster));
  }

  /// The one pending callout to `cluster` (an error if there are none or several).
  only(cluster) {
    const found = this.pending(cluster);
    if (found.length !== 1) throw new Error(`expected one pending callout to ${cluster}, found ${found.length}`);
    return found[0];
  }

  /// Answers a callout: `{status, headers, body}` (body a string, bytes or a JSON value).
  answer(callout, { status = 200, headers = [], body = '' } = {}) {
    const text = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
    this.respond(callout, { headers: [[':status', String(status)], ...headers], body: bytesOf(text) });
    this.settleIfAuto();
  }

  /// Fails a callout as Envoy does on a reset or a timeout: no headers, no body.
  failCallout(callout) {
    this.respond(callout, null);
    this.settleIfAuto();
  }

  respond(callout, response) {
    if (callout.state !== 'pending') throw new Error(`callout ${callout.token} to ${callout.cluster} is ${callout.state}`);
    callout.state = response ? 'answered' : 'failed';
    const { vm } = callout;
    const headers = response?.headers ?? [], body = response?.body ?? new Uint8Array();
    vm.callResponse = { headers, body };
    try {
      vm.call('proxy_on_http_call_response', callout.contextId, callout.contextId, callout.token,
        headers.length, body.length, 0);
    } finally {
      vm.callResponse = null;
    }
  }

  /// Callouts whose effective context at dispatch was an HTTP context, not a root context.
  fromHttpContexts() {
    return this.callouts.filter((c) => c.contextId !== c.vm.rootId);
  }

  // Shared queues, Envoy's semantics (one vm_id): keyed by name; registering a name again
  // keeps its id and makes the new registrant the one told of new items.
  registerQueue(name, vm, rootId) {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = { id: this.nextQueueId++, name, items: [] };
      this.queues.set(name, queue);
      this.queueById.set(queue.id, queue);
    }
    queue.vm = vm;
    queue.rootId = rootId;
    return queue.id;
  }

  resolveQueue(vmId, name) {
    return vmId === this.vmId ? this.queues.get(name)?.id : undefined;
  }

  /// `false`: no such queue. The registrant's `on_queue_ready` is delivered by `settle`.
  enqueue(id, item) {
    const queue = this.queueById.get(id);
    if (!queue) return false;
    queue.items.push(item);
    // Envoy posts the notification to the registrant of the moment, on its own thread.
    this.ready.push({ vm: queue.vm, rootId: queue.rootId, id: queue.id });
    return true;
  }

  /// The oldest item, `null` when the queue is empty, `undefined` when there is no such queue.
  dequeue(id) {
    const queue = this.queueById.get(id);
    if (!queue) return undefined;
    return queue.items.length ? queue.items.shift() : null;
  }

  // Shared data, Envoy's semantics.
  getShared(key) {
    return this.store.get(key);
  }

  setShared(key, value, cas) {
    const entry = this.store.get(key);
    if (entry && cas !== 0 && cas !== entry.cas) return CAS_MISMATCH;
    this.store.set(key, { value, cas: this.nextCas++ });
    return OK;
  }
}

export class Request {
  constructor(vm, id, headers, properties) {
    this.vm = vm;
    this.id = id;
    this.headers = headers; // what the module sees and rewrites
    this.properties = properties;
    this.replies = []; // local replies: { status, headers, body }
    this.continued = 0; // how many times it was let through (the header phase's Continue or a resume)
    this.upstream = null; // the headers at the (first) continue
    this.ended = false;
    this.hasBody = false; // the headers did not end the stream
    this.buffered = new Uint8Array(); // body chunks the module stopped (Envoy's decoding buffer)
    this.upstreamBody = new Uint8Array(); // body bytes that went upstream
    this.bodyEnded = false;
    this.chunk = null; // the chunk being delivered, during its callback
    this.bodyReads = 0; // how many times the module read the body buffer
  }

  get reply() {
    return this.replies[0];
  }

  /// 'replied', 'continued' or 'paused' (nothing yet).
  get state() {
    if (this.replies.length) return 'replied';
    return this.continued ? 'continued' : 'paused';
  }

  header(name) {
    return this.headers.find(([n]) => n === name)?.[1];
  }

  upstreamHeader(name) {
    return this.upstream?.find(([n]) => n === name)?.[1];
  }

  json() {
    return JSON.parse(this.reply.body);
  }

  letThrough() {
    this.continued++;
    this.upstream ??= this.headers.map(([k, v]) => [k, v]);
    // What Envoy buffered follows the headers.
    this.upstreamBody = concat(this.upstreamBody, this.buffered);
    this.buffered = new Uint8Array();
  }

  get upstreamText() {
    return dec.decode(this.upstreamBody);
  }
}

const concat = (a, b) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

export class Vm {
  constructor(host, index, config, vmConfig) {
    this.host = host;
    this.index = index;
    this.config = bytesOf(typeof config === 'string' ? config : JSON.stringify(config));
    this.vmConfig = bytesOf(vmConfig);
    this.rootId = 1;
    this.nextContext = 2;
    this.nextToken = 1;
    this.contexts = new Map(); // id -> Request (HTTP contexts alive)
    this.effective = 0;
    this.tickPeriod = 0;
    this.nextTick = 0;
    this.metrics = new Map(); // this VM's metric ids -> the process's stat
    this.logs = [];
    this.callResponse = null;
    this.alive = true;
    const imports = this.imports();
    this.instance = new WebAssembly.Instance(host.module, imports);
    this.memory = this.instance.exports.memory;
  }

  start() {
    const x = this.instance.exports;
    if (x._initialize) this.call('_initialize', 0);
    this.call('proxy_on_context_create', this.rootId, this.rootId, 0);
    if (!this.call('proxy_on_vm_start', this.rootId, this.rootId, this.vmConfig.length)) {
      throw this.host.fail(`VM ${this.index}: proxy_on_vm_start refused`);
    }
    if (!this.call('proxy_on_configure', this.rootId, this.rootId, this.config.length)) {
      throw this.host.fail(`VM ${this.index}: proxy_on_configure refused the configuration: ${this.logText()}`);
    }
  }

  /// Calls an export with `context` as the effective context; a trap fails the test, naming it.
  call(name, context, ...args) {
    if (!this.alive) throw this.host.fail(`VM ${this.index} is dead (an earlier trap); cannot call ${name}`);
    const saved = this.effective;
    this.effective = context;
    try {
      return this.instance.exports[name](...args);
    } catch (error) {
      this.alive = false;
      throw this.host.fail(`VM ${this.index}: ${name}(${args.join(', ')}) trapped: ${error.message}; log: ${this.logText()}`);
    } finally {
      this.effective = saved;
    }
  }

  logText() {
    return this.logs.map(({ level, message }) => `[${level}] ${message}`).join(' | ');
  }

  /// A new HTTP request: the context is created and its request headers delivered. `body`: a
  /// string sent whole right after the headers; `open`: the headers do not end the stream and the
  /// test sends the body (`sendBody`).
  request({ method = 'GET', path = '/rest/api/2/myself', authorization, headers = [], clientAddress = '127.0.0.1:40000', body, open = false } = {}) {
    const all = [[':authority', 'jira.example'], [':path', path], [':method', method], [':scheme', 'http'],
      ...(authorization ? [['authorization', authorization]] : []), ...headers];
    const id = this.nextContext++;
    const request = new Request(this, id, all, { 'source\0address': clientAddress });
    this.contexts.set(id, request);
    this.call('proxy_on_context_create', id, id, this.rootId);
    request.hasBody = open || body !== undefined;
    const action = this.call('proxy_on_request_headers', id, id, all.length, request.hasBody ? 0 : 1);
    request.headersHeld = action !== 0;
    if (action === 0 && !request.replies.length) request.letThrough();
    this.host.settleIfAuto();
    if (body !== undefined) this.sendBody(request, body, { end: true });
    return request;
  }

  /// A chunk of the request's body arrives (`end`: the last). Nothing is delivered to a request
  /// answered or ended (Envoy stops decoding it).
  sendBody(request, chunk, { end = false } = {}) {
    if (!request.hasBody || request.bodyEnded) throw new Error(`request ${request.id} takes no more body`);
    request.bodyEnded = end;
    if (request.ended || request.replies.length) return undefined;
    const data = bytesOf(chunk);
    if (!this.host.allowOnHeadersStopIteration && request.headersHeld && !request.continued) {
      // StopAllIterationAndWatermark: Envoy keeps the chunk and tells the filter nothing.
      request.buffered = concat(request.buffered, data);
      return undefined;
    }
    request.chunk = data;
    let action;
    try {
      action = this.call('proxy_on_request_body', request.id, request.id,
        request.buffered.length + data.length, end ? 1 : 0);
    } finally {
      request.chunk = null;
    }
    if (request.replies.length) {
      // Answered in the callback: the chunk goes nowhere.
    } else if (action === DATA.CONTINUE) {
      request.buffered = concat(request.buffered, data);
      if (request.continued) {
        request.upstreamBody = concat(request.upstreamBody, request.buffered);
        request.buffered = new Uint8Array();
      } else {
        request.letThrough(); // a stopped request's headers go on with its data
      }
    } else if (action === DATA.STOP_AND_BUFFER || action === DATA.STOP_AND_WATERMARK) {
      request.buffered = concat(request.buffered, data);
      if (request.buffered.length > ENVOY_BUFFER_LIMIT) {
        request.replies.push({ status: 413, headers: [], body: 'Payload Too Large', envoy: true });
      }
    } else {
      throw this.host.fail(`VM ${this.index}: proxy_on_request_body answered ${action} (tokengate never drops a body)`);
    }
    this.host.settleIfAuto();
    return action;
  }

  /// The request's trailers arrive (they end the stream).
  sendTrailers(request, trailers = [['x-checksum', '1']]) {
    if (!request.hasBody || request.bodyEnded) throw new Error(`request ${request.id} takes no trailers`);
    request.bodyEnded = true;
    if (request.ended || request.replies.length) return undefined;
    const action = this.call('proxy_on_request_trailers', request.id, request.id, trailers.length);
    if (action === 0 && !request.continued && !request.replies.length) request.letThrough();
    this.host.settleIfAuto();
    return action;
  }

  /// The request's stream ends (answered, or the client hung up): proxy_on_done, proxy_on_log,
  /// proxy_on_delete; its callouts are cancelled.
  end(request) {
    if (request.ended) return;
    this.call('proxy_on_done', request.id, request.id);
    this.call('proxy_on_log', request.id, request.id);
    this.call('proxy_on_delete', request.id, request.id);
    request.ended = true;
    this.contexts.delete(request.id);
    for (const c of this.host.callouts) {
      if (c.vm === this && c.contextId === request.id && c.state === 'pending') c.state = 'cancelled';
    }
    this.host.settleIfAuto();
  }

  /// Runs the root context's `on_tick` now (the clock's ticks call it by themselves).
  tick() {
    this.call('proxy_on_tick', this.rootId, this.rootId);
  }

  /// The VM goes away as in a reload of the plugin: its root context is done and deleted, its
  /// callouts are cancelled, it ticks no more. Its shared data stays.
  stop() {
    for (const request of this.contexts.values()) this.end(request);
    this.call('proxy_on_done', this.rootId, this.rootId);
    this.call('proxy_on_delete', this.rootId, this.rootId);
    for (const c of this.host.callouts) if (c.vm === this && c.state === 'pending') c.state = 'cancelled';
    this.alive = false;
    this.tickPeriod = 0;
  }

  /// A metric's value for the whole process, as Envoy's stats show it (the sum over every
  /// VM that defined it; undefined if none did).
  metric(name) {
    return this.host.stats.get(name)?.value;
  }

  /// 'counter', 'gauge' or 'histogram' (undefined if never defined).
  metricType(name) {
    return this.host.stats.get(name)?.type;
  }

  bytes() { return new Uint8Array(this.memory.buffer); }
  view() { return new DataView(this.memory.buffer); }
  text(ptr, len) { return dec.decode(this.bytes().subarray(ptr, ptr + len)); }
  copy(ptr, len) { return this.bytes().slice(ptr, ptr + len); }
  u32(ptr, value) { this.view().setUint32(ptr, value, true); }

  /// Hands `data` to the module the ABI's way: in memory it allocates, pointer and size returned.
  give(data, retPtr, retSize) {
    const ptr = this.instance.exports.proxy_on_memory_allocate(data.length || 1);
    this.bytes().set(data, ptr);
    this.u32(retPtr, ptr);
    this.u32(retSize, data.length);
    return OK;
  }

  /// The HTTP context the effective context names, or undefined (root context, or gone).
  current() {
    return this.contexts.get(this.effective);
  }

  headerMap(map) {
    if (map === MAP.REQUEST_HEADERS) return this.current()?.headers;
    if (map === MAP.CALL_RESPONSE_HEADERS) return this.callResponse?.headers;
    if (map === MAP.CALL_RESPONSE_TRAILERS) return this.callResponse ? [] : undefined;
    return undefined;
  }

  imports() {
    const host = this.host;
    const vm = this;
    const env = {
      proxy_log: (level, ptr, len) => {
        vm.logs.push({ level: LEVELS[level] ?? String(level), message: vm.text(ptr, len) });
        return OK;
      },
      proxy_get_buffer_bytes: (type, start, max, rp, rs) => {
        let data;
        if (type === BUFFER.PLUGIN_CONFIGURATION) data = vm.config;
        else if (type === BUFFER.VM_CONFIGURATION) data = vm.vmConfig;
        else if (type === BUFFER.CALL_RESPONSE_BODY && vm.callResponse) data = vm.callResponse.body;
        else if (type === BUFFER.REQUEST_BODY && vm.current()) {
          // What Envoy buffered, and the chunk being delivered (during its callback).
          const request = vm.current();
          request.bodyReads++;
          data = request.chunk ? concat(request.buffered, request.chunk) : request.buffered;
          if (!data.length && !request.chunk) return NOT_FOUND;
        }
        else return NOT_FOUND;
        start >>>= 0; // i32 as the ABI's u32 (the SDK asks for usize::MAX)
        return vm.give(data.subarray(start, start + (max >>> 0)), rp, rs);
      },
      proxy_get_property: (pp, pn, rp, rs) => {
        const path = vm.text(pp, pn).replace(/\0$/, '');
        const value = vm.current()?.properties[path];
        return value === undefined ? NOT_FOUND : vm.give(bytesOf(value), rp, rs);
      },
      proxy_define_metric: (type, np, nn, ret) => {
        const name = vm.text(np, nn), kind = METRIC_TYPES[type] ?? String(type);
        let stat = host.stats.get(name);
        if (!stat) host.stats.set(name, stat = { name, type: kind, value: 0 });
        if (stat.type !== kind) return BAD_ARGUMENT;
        let id = [...vm.metrics].find(([, m]) => m === stat)?.[0];
        if (id === undefined) vm.metrics.set(id = vm.metrics.size + 1, stat);
        vm.u32(ret, id);
        return OK;
      },
      proxy_increment_metric: (id, offset) => {
        const m = vm.metrics.get(id);
        if (!m) return NOT_FOUND;
        if (m.type === 'counter' && offset < 0) return BAD_ARGUMENT; // as Envoy: counters only grow
        m.value += Number(offset);
        if (m.value < 0) throw host.fail(`VM ${vm.index}: ${m.type} ${m.name} went below 0 (${m.value})`);
        return OK;
      },
      proxy_record_metric: (id, value) => {
        const m = vm.metrics.get(id);
        if (!m) return NOT_FOUND;
        if (m.type === 'counter') return BAD_ARGUMENT; // as Envoy: a counter cannot be set
        m.value = Number(value);
        return OK;
      },
      proxy_get_metric: (id, ret) => {
        const m = vm.metrics.get(id);
        if (!m) return NOT_FOUND;
        vm.view().setBigUint64(ret, BigInt(m.value), true);
        return OK;
      },
      proxy_set_tick_period_milliseconds: (period) => {
        vm.tickPeriod = period;
        vm.nextTick = host.now + period;
        return OK;
      },
      proxy_get_current_time_nanoseconds: (ret) => {
        vm.view().setBigUint64(ret, BigInt(host.now) * 1000000n, true);
        return OK;
      },
      proxy_get_header_map_pairs: (map, rp, rs) => {
        const pairs = vm.headerMap(map);
        return pairs ? vm.give(serialise(pairs), rp, rs) : BAD_ARGUMENT;
      },
      proxy_get_header_map_value: (map, kp, kn, rp, rs) => {
        const pairs = vm.headerMap(map);
        if (!pairs) return BAD_ARGUMENT;
        const name = vm.text(kp, kn);
        const found = pairs.find(([n]) => n === name);
        return found ? vm.give(bytesOf(found[1]), rp, rs) : NOT_FOUND;
      },
      proxy_replace_header_map_value: (map, kp, kn, vp, vn) => {
        const request = map === MAP.REQUEST_HEADERS ? vm.current() : undefined;
        if (!request) return BAD_ARGUMENT;
        const name = vm.text(kp, kn), value = vm.text(vp, vn);
        const at = request.headers.findIndex(([n]) => n === name);
        request.headers = request.headers.filter(([n], i) => n !== name || i === at);
        if (at < 0) request.headers.push([name, value]);
        else request.headers[request.headers.findIndex(([n]) => n === name)] = [name, value];
        return OK;
      },
      proxy_add_header_map_value: (map, kp, kn, vp, vn) => {
        const request = map === MAP.REQUEST_HEADERS ? vm.current() : undefined;
        if (!request) return BAD_ARGUMENT;
        request.headers.push([vm.text(kp, kn), vm.text(vp, vn)]);
        return OK;
      },
      proxy_remove_header_map_value: (map, kp, kn) => {
        const request = map === MAP.REQUEST_HEADERS ? vm.current() : undefined;
        if (!request) return BAD_ARGUMENT;
        const name = vm.text(kp, kn);
        request.headers = request.headers.filter(([n]) => n !== name);
        return OK;
      },
      proxy_get_shared_data: (kp, kn, rp, rs, casPtr) => {
        const entry = host.getShared(vm.text(kp, kn));
        if (!entry) return NOT_FOUND;
        vm.u32(casPtr, entry.cas);
        return vm.give(entry.value, rp, rs);
      },
      proxy_set_shared_data: (kp, kn, vp, vn, cas) => {
        const key = vm.text(kp, kn), value = vm.copy(vp, vn);
        host.beforeSharedSet?.(key, vm, cas >>> 0);
        return host.setShared(key, value, cas >>> 0);
      },
      proxy_register_shared_queue: (np, nn, ret) => {
        vm.u32(ret, host.registerQueue(vm.text(np, nn), vm, vm.effective));
        return OK;
      },
      proxy_resolve_shared_queue: (vp, vn, np, nn, ret) => {
        const id = host.resolveQueue(vn ? vm.text(vp, vn) : host.vmId, vm.text(np, nn));
        if (id === undefined) return NOT_FOUND;
        vm.u32(ret, id);
        return OK;
      },
      proxy_enqueue_shared_queue: (id, vp, vn) => (host.enqueue(id, vm.copy(vp, vn)) ? OK : NOT_FOUND),
      proxy_dequeue_shared_queue: (id, rp, rs) => {
        const item = host.dequeue(id);
        if (item === undefined) return NOT_FOUND;
        return item === null ? EMPTY : vm.give(item, rp, rs);
      },
      proxy_http_call: (up, un, hp, hn, bp, bn, tp, tn, timeout, ret) => {
        const cluster = vm.text(up, un);
        const headers = deserialise(vm.copy(hp, hn));
        const callout = {
          vm, token: vm.nextToken++, contextId: vm.effective, cluster, headers,
          header: (name) => headers.find(([n]) => n === name)?.[1],
          body: vm.text(bp, bn), timeoutMs: timeout >>> 0, dispatchedAt: host.now, state: 'pending',
        };
        if (!vm.contexts.has(vm.effective) && vm.effective !== vm.rootId) {
          throw host.fail(`VM ${vm.index}: proxy_http_call from context ${vm.effective}, which is gone`);
        }
        host.callouts.push(callout);
        vm.u32(ret, callout.token);
        return OK;
      },
      proxy_send_local_response: (status, dp, dn, bp, bn, hp, hn, grpc) => {
        const request = vm.current();
        if (!request) return BAD_ARGUMENT;
        request.replies.push({ status: status >>> 0, headers: deserialise(vm.copy(hp, hn)), body: vm.text(bp, bn) });
        return OK;
      },
      proxy_continue_stream: (stream) => {
        const request = vm.current();
        if (!request || stream !== 0) return BAD_ARGUMENT;
        request.letThrough();
        return OK;
      },
      proxy_close_stream: () => {
        throw host.fail(`VM ${vm.index}: proxy_close_stream called (tokengate never closes a stream)`);
      },
      proxy_done: () => OK,
      proxy_get_log_level: (ret) => { vm.u32(ret, 2); return OK; }, // info
      proxy_set_effective_context: (id) => {
        if (id !== vm.rootId && !vm.contexts.has(id)) return BAD_ARGUMENT;
        vm.effective = id;
        return OK;
      },
      // No foreign function is offered: NotFound, as Envoy answers for a name it has not
      // registered (so the module checks every signature itself). Not Unimplemented: the SDK's
      // `call_foreign_function` panics on that status, which would kill the VM.
      proxy_call_foreign_function: () => NOT_FOUND,
    };
    for (const name of UNEXPECTED_CALLS) {
      env[name] = () => { throw host.fail(`VM ${vm.index}: unexpected host call ${name}`); };
    }
    const wasi = {
      fd_write: (fd, iovs, count, written) => {
        let total = 0, text = '';
        for (let i = 0; i < count; i++) {
          const ptr = vm.view().getUint32(iovs + i * 8, true), len = vm.view().getUint32(iovs + i * 8 + 4, true);
          text += vm.text(ptr, len);
          total += len;
        }
        vm.logs.push({ level: fd === 2 ? 'stderr' : 'stdout', message: text });
        vm.u32(written, total);
        return 0;
      },
      random_get: (ptr, len) => { randomFillSync(vm.bytes().subarray(ptr, ptr + len)); return 0; },
      clock_time_get: (id, precision, ret) => {
        vm.view().setBigUint64(ret, BigInt(host.now) * 1000000n, true);
        return 0;
      },
      environ_sizes_get: (count, size) => { vm.u32(count, 0); vm.u32(size, 0); return 0; },
      environ_get: () => 0,
      args_sizes_get: (count, size) => { vm.u32(count, 0); vm.u32(size, 0); return 0; },
      args_get: () => 0,
      proc_exit: (code) => { throw host.fail(`VM ${vm.index}: proc_exit(${code})`); },
      sched_yield: () => 0,
    };
    const imports = { env: {}, wasi_snapshot_preview1: {} };
    const missing = [];
    for (const { module: from, name, kind } of WebAssembly.Module.imports(host.module)) {
      const table = from === 'env' ? env : from === 'wasi_snapshot_preview1' ? wasi : undefined;
      if (kind !== 'function' || !table?.[name]) missing.push(`${from}.${name}`);
      else imports[from][name] = table[name];
    }
    if (missing.length) throw host.fail(`the module imports what this host does not offer: ${missing.join(', ')}`);
    return imports;
  }
}
