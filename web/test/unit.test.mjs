// Unit tests of the client and the UI's pure modules; no server, no browser.
// The client is driven through a scripted fake WebSocket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, buildUrl, connect, DEFAULT_RECONNECT } from '../tailbus.js';
import { Timeline } from '../timeline.js';
import { ReplayController } from '../replay.js';
import { buildFilter, controlsToParams, emptyControls, ERRORS_ONLY, paramsToControls } from '../filters.js';
import { alertFilter, AlertsRuntime, makeDefinition, STORAGE_KEYS } from '../alerts.js';
import { formatDuration, isErrorEvent, splitList } from '../format.js';

// ---- a scripted WebSocket ----------------------------------------------------

class FakeWS {
  static sockets = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWS.sockets.push(this);
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code = 1000, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** The server sends a frame. */
  frame(obj) {
    this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }
  /** The server (or the network) drops the connection. */
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const ev = (offset, extra = {}) => ({ offset, session_id: 's', event_type: 't', timestamp: new Date(1e12 + offset * 1000).toISOString(), ...extra });
const hello = (extra = {}) => ({ type: 'hello', epoch: 'E1', head: 0, earliest: 1, session_id: null, filter: {}, batch_size: 50, batch_window_ms: 0, server: 'tailbus/test', ...extra });
const batch = (events) => ({ type: 'batch', count: events.length, timestamp: '', events });

async function opened(options = {}) {
  FakeWS.sockets = [];
  const c = connect({ url: 'ws://srv:1', WebSocket: FakeWS, reconnect: { initialDelayMs: 10, minDelayMs: 0, maxDelayMs: 20 }, pingIntervalMs: 0, ...options });
  const rec = { events: [], statuses: [], resets: [], errors: [] };
  c.on('event', (e) => rec.events.push(e));
  c.on('status', (s) => rec.statuses.push(s));
  c.on('reset', (r) => rec.resets.push(r));
  c.on('error', (e) => rec.errors.push(e));
  await tick();
  const ws = FakeWS.sockets[0];
  ws.open();
  return { c, ws, rec };
}

async function nextSocket(n) {
  for (let i = 0; i < 200 && FakeWS.sockets.length < n; i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(FakeWS.sockets.length >= n, `socket ${n} opened`);
  const ws = FakeWS.sockets[n - 1];
  ws.open();
  return ws;
}

// ---- client ------------------------------------------------------------------------

test('backoff: full jitter under an exponential ceiling, first retry under 1 s, cap 30 s', () => {
  assert.equal(DEFAULT_RECONNECT.maxDelayMs, 30000);
  assert.ok(backoffDelay(1, {}, () => 0.999999) < 1000);
  assert.equal(backoffDelay(1, {}, () => 0), DEFAULT_RECONNECT.minDelayMs);
  assert.ok(backoffDelay(2, {}, () => 0.999999) < 2000 && backoffDelay(2, {}, () => 0.999999) >= 1999);
  for (const attempt of [6, 10, 50, 1000]) assert.ok(backoffDelay(attempt, {}, () => 0.999999) < 30000);
  assert.equal(backoffDelay(30, {}, () => 0.5), 100 + Math.floor(0.5 * (30000 - 100)));
});

test('buildUrl: endpoints, session binding and query parameters', () => {
  assert.equal(buildUrl({ url: 'http://h:8080' }), 'ws://h:8080/ws');
  assert.equal(buildUrl({ url: 'https://h' }), 'wss://h/ws');
  assert.equal(buildUrl({ url: 'ws://h:1/', sessionId: 'a b' }), 'ws://h:1/ws/events/a%20b');
  assert.equal(buildUrl({ url: 'ws://h:1', sessionId: 'team/a' }), 'ws://h:1/ws?session_id=team%2Fa');
  const u = new URL(buildUrl({ url: 'ws://h:1/ws', filter: { event_types: ['a+b'] }, after: 5, epoch: 'E', batchSize: 1, batchWindowMs: 20, token: 't k' }));
  assert.equal(u.pathname, '/ws');
  assert.deepEqual(JSON.parse(u.searchParams.get('filter')), { event_types: ['a+b'] });
  assert.equal(u.searchParams.get('after'), '5');
  assert.equal(u.searchParams.get('epoch'), 'E');
  assert.equal(u.searchParams.get('batch_size'), '1');
  assert.equal(u.searchParams.get('batch_window_ms'), '20');
  assert.equal(u.searchParams.get('token'), 't k');
  // No position: live only, and no epoch either.
  const live = new URL(buildUrl({ url: 'ws://h:1', epoch: 'E' }));
  assert.equal(live.searchParams.has('after'), false);
  assert.equal(live.searchParams.has('epoch'), false);
});

test('client: never delivers an offset twice, within and across frames and reconnects', async () => {
  const { c, ws, rec } = await opened({ after: 0 });
  ws.frame(hello({ head: 3 }));
  ws.frame(batch([ev(1), ev(2), ev(2), ev(1)]));
  ws.frame({ type: 'event', ...ev(3) });
  ws.frame({ ...ev(3), type: 'assistant' }); // an event with its own `type`, sent again
  ws.frame(batch([ev(4, { type: 'error' })]));
  assert.deepEqual(rec.events.map((e) => e.offset), [1, 2, 3, 4]);
  assert.equal(rec.events[2].type, undefined, 'the frame type is not kept on the event');
  assert.equal(rec.events[3].type, 'error', "the event's own type is kept");
  assert.equal(c.lastOffset, 4);

  ws.drop(1006);
  const reconnecting = rec.statuses.at(-1);
  assert.equal(reconnecting.state, 'reconnecting');
  assert.equal(reconnecting.attempt, 1);
  const ws2 = await nextSocket(2);
  const u = new URL(ws2.url);
  assert.equal(u.searchParams.get('after'), '4');
  assert.equal(u.searchParams.get('epoch'), 'E1');
  ws2.frame(hello({ head: 6 }));
  assert.equal(rec.statuses.at(-1).state, 'connected');
  ws2.frame(batch([ev(3), ev(4), ev(5), ev(6)])); // a server replaying too much is harmless
  assert.deepEqual(rec.events.map((e) => e.offset), [1, 2, 3, 4, 5, 6]);
  c.close();
  assert.equal(rec.statuses.at(-1).state, 'closed');
});

test('client: a changed epoch in hello resets the position once, with or without the server reset frame', async () => {
  const { c, ws, rec } = await opened({ after: 0 });
  ws.frame(hello());
  ws.frame(batch([ev(1), ev(2), ev(3)]));
  ws.drop();
  const ws2 = await nextSocket(2);
  ws2.frame(hello({ epoch: 'E2', head: 2 }));
  ws2.frame({ type: 'reset', reason: 'epoch_mismatch', epoch: 'E2', earliest: 1 });
  ws2.frame(batch([ev(1, { n: 'new' }), ev(2, { n: 'new' })]));
  assert.equal(rec.resets.length, 1);
  assert.equal(c.epoch, 'E2');
  assert.deepEqual(rec.events.map((e) => e.offset), [1, 2, 3, 1, 2]);
  // An evicted position: continue from earliest.
  ws2.frame({ type: 'reset', reason: 'offset_evicted', epoch: 'E2', earliest: 10 });
  ws2.frame(batch([ev(10)]));
  assert.equal(rec.resets.length, 2);
  assert.equal(c.lastOffset, 10);
  c.close();
});

test('client: subscribe ignores frames of the replaced subscription and resumes from the position', async () => {
  const { c, ws, rec } = await opened({ after: 0, filter: { event_types: ['a'] } });
  ws.frame(hello());
  ws.frame(batch([ev(1)]));
  const p = c.subscribe({ event_types: ['b'] });
  const sub = ws.sent.at(-1);
  assert.equal(sub.type, 'subscribe');
  assert.deepEqual(sub.filter, { event_types: ['b'] });
  assert.equal(sub.after, 1);
  assert.equal(sub.epoch, 'E1');
  ws.frame(batch([ev(2)])); // still the old filter: dropped
  ws.frame(hello({ filter: { event_types: ['b'] } }));
  const h = await p;
  assert.deepEqual(h.filter, { event_types: ['b'] });
  ws.frame(batch([ev(2, { event_type: 'b' }), ev(3, { event_type: 'b' })]));
  assert.deepEqual(rec.events.map((e) => `${e.offset}${e.event_type}`), ['1t', '2b', '3b']);

  // A refused filter: rejected by request id, the old filter is restored and resubscribed.
  const bad = c.subscribe({ nope: 1 });
  const badFrame = ws.sent.at(-1);
  ws.frame({ type: 'error', code: 'bad_filter', error: 'filter.nope: unknown key', request_id: badFrame.request_id });
  await assert.rejects(bad, /unknown key/);
  assert.deepEqual(c.filter, { event_types: ['b'] });
  const again = ws.sent.at(-1);
  assert.equal(again.type, 'subscribe');
  assert.deepEqual(again.filter, { event_types: ['b'] });
  assert.equal(again.after, 3);
  c.close();
});

test('client: publish waits for a connection, resolves on its ack, rejects on error or a lost connection', async () => {
  const { c, ws } = await opened();
  const early = c.publish({ session_id: 's', event_type: 'x' });
  assert.equal(ws.sent.length, 0, 'nothing sent before hello');
  ws.frame(hello({ head: 7 }));
  assert.equal(ws.sent[0].type, 'publish');
  ws.frame({ type: 'ack', request_id: ws.sent[0].request_id, offsets: [8] });
  assert.equal(await early, 8);
  const many = c.publish([{ session_id: 's', event_type: 'x' }, { session_id: 's', event_type: 'y' }]);
  ws.frame({ type: 'ack', request_id: ws.sent.at(-1).request_id, offsets: [9, 10] });
  assert.deepEqual(await many, [9, 10]);
  const bad = c.publish({ event_type: 'x' });
  ws.frame({ type: 'error', code: 'invalid_event', error: 'events[0].session_id: missing', request_id: ws.sent.at(-1).request_id });
  await assert.rejects(bad, (err) => err.code === 'invalid_event' && /session_id/.test(err.message));
  const lost = c.publish({ session_id: 's', event_type: 'x' });
  ws.drop(1006);
  await assert.rejects(lost, /connection lost/);
  const msg = c.sendMessage('hi', 's');
  const ws2 = await nextSocket(2);
  ws2.frame(hello());
  const m = ws2.sent.find((f) => f.type === 'message');
  assert.equal(m.content, 'hi');
  ws2.frame({ type: 'ack', request_id: m.request_id, offsets: [11] });
  assert.equal(await msg, 11);
  c.close();
  await assert.rejects(c.publish({ session_id: 's', event_type: 'x' }), /closed/);
});

test('client: a fatal close code stops reconnecting', async () => {
  const { c, ws, rec } = await opened({ filter: { bad: 1 } });
  ws.frame({ type: 'error', code: 'bad_filter', error: 'filter.bad: unknown key' });
  ws.drop(4400);
  assert.equal(c.state, 'closed');
  assert.equal(rec.statuses.at(-1).code, 4400);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(FakeWS.sockets.length, 1, 'no reconnect');
  assert.ok(rec.errors.some((e) => e.code === 'bad_filter'));
});

test('client: live only resumes from the head seen in hello', async () => {
  const { c, ws, rec } = await opened();
  ws.frame(hello({ head: 41 }));
  assert.equal(c.lastOffset, 41);
  ws.drop();
  const ws2 = await nextSocket(2);
  assert.equal(new URL(ws2.url).searchParams.get('after'), '41');
  ws2.frame(hello({ head: 43 }));
  ws2.frame(batch([ev(42), ev(43)]));
  assert.deepEqual(rec.events.map((e) => e.offset), [42, 43]);
  c.close();
});

// ---- timeline ----------------------------------------------------------------------

test('timeline: streaming deltas become one bubble; tool calls pair with results; LLM calls with responses', () => {
  const t0 = Date.parse('2025-01-01T00:00:00Z');
  const at = (ms) => new Date(t0 + ms).toISOString();
  const tl = new Timeline();
  const events = [
    { offset: 1, event_type: 'message', content: 'Hi?', timestamp: at(0) },
    { offset: 2, event_type: 'openai_call', model: 'gpt-4o', timestamp: at(10) },
    { offset: 3, event_type: 'tool_call', tool_call_id: 'c1', tool_name: 'search', arguments: { q: 'x' }, timestamp: at(20) },
    { offset: 4, event_type: 'tool_call', tool_call_id: 'c2', tool_name: 'fetch', arguments: {}, timestamp: at(25) },
    { offset: 5, event_type: 'openai_response', model: 'gpt-4o', prompt_tokens: 100, completion_tokens: 20, cost_tokens: 120, timestamp: at(500) },
    { offset: 6, event_type: 'tool_result', tool_call_id: 'c2', tool_name: 'fetch', result: 'page', timestamp: at(1025) },
    { offset: 7, event_type: 'tool_result', tool_call_id: 'c1', result: [1, 2], duration_ms: 1234, status: 'error', timestamp: at(1300) },
    { offset: 8, event_type: 'assistant', streaming: true, content: 'Hel', timestamp: at(1400) },
    { offset: 9, event_type: 'assistant', streaming: true, content: 'lo', timestamp: at(1410) },
    { offset: 9, event_type: 'assistant', streaming: true, content: 'lo', timestamp: at(1410) }, // duplicate offset
    { offset: 10, event_type: 'assistant', streaming: false, content: 'Hello', timestamp: at(1420), cost_tokens: 5 },
    { offset: 11, event_type: 'error', error: 'boom', timestamp: at(1500) },
    { offset: 12, event_type: 'tool_result', tool_call_id: 'zz', result: 'orphan', timestamp: at(1600) },
  ];
  const changes = events.map((e) => tl.add(e));
  assert.deepEqual(tl.items.map((i) => i.kind), ['user', 'llm', 'tool', 'tool', 'assistant', 'error', 'tool']);
  const [user, llm, c1, c2, reply, error, orphan] = tl.items;
  assert.equal(user.text, 'Hi?');
  assert.equal(llm.model, 'gpt-4o');
  assert.deepEqual(llm.tokens, { prompt: 100, completion: 20, total: 120 });
  assert.equal(llm.durationMs, 490);
  assert.equal(c1.paired, true);
  assert.equal(c1.durationMs, 1234, 'duration_ms of the result wins');
  assert.equal(c1.measuredMs, 1280);
  assert.equal(c1.status, 'error');
  assert.equal(c1.error, true);
  assert.deepEqual(c1.result, [1, 2]);
  assert.equal(c2.durationMs, 1000, 'measured between call and result');
  assert.equal(reply.text, 'Hello');
  assert.equal(reply.streaming, false);
  assert.deepEqual(reply.events.map((e) => e.offset), [8, 9, 10]);
  assert.equal(error.message, 'boom');
  assert.equal(orphan.orphanResult, true);
  assert.equal(tl.costTotal, 125);
  assert.equal(reply.costTotal, 125);
  assert.equal(llm.costTotal, 120);
  assert.equal(tl.errorCount, 2);
  assert.equal(tl.eventCount, 12);
  assert.deepEqual(changes[9], { added: [], updated: [] }, 'duplicate offset ignored');
  assert.deepEqual(changes[8].updated, [reply]);
});

test('timeline: a final assistant event carrying only the last piece is appended', () => {
  const tl = new Timeline().addAll([
    { offset: 1, event_type: 'assistant', streaming: true, content: 'a' },
    { offset: 2, event_type: 'assistant', streaming: true, content: 'b' },
    { offset: 3, event_type: 'assistant', content: 'c' },
    { offset: 4, event_type: 'assistant', content: 'standalone' },
  ]);
  assert.deepEqual(tl.items.map((i) => i.text), ['abc', 'standalone']);
});

// ---- replay ------------------------------------------------------------------------

function fakeClock() {
  const timers = [];
  let now = 0;
  return {
    timers,
    setTimeout: (fn, ms) => {
      timers.push({ fn, at: now + ms });
      return timers.length;
    },
    clearTimeout: (id) => {
      if (timers[id - 1]) timers[id - 1].fn = null;
    },
    frame: (fn) => {
      timers.push({ fn, at: now + 16 });
      return timers.length;
    },
    cancelFrame(id) {
      this.clearTimeout(id);
    },
    now: () => now,
    /** Runs the next pending timer; returns its delay. */
    runNext() {
      const i = timers.findIndex((t) => t.fn);
      if (i < 0) return null;
      const t = timers[i];
      const wait = t.at - now;
      now = t.at;
      const fn = t.fn;
      t.fn = null;
      fn();
      return wait;
    },
  };
}

test('replay: plays with the events’ own gaps at 1× and 10×, skips idle gaps, steps and seeks', () => {
  const times = [0, 100, 1100, 61100, 61200];
  const events = times.map((t, i) => ({ offset: i + 1, timestamp: new Date(1e12 + t).toISOString() }));
  const clock = fakeClock();
  const positions = [];
  const r = new ReplayController({ events, clock, onChange: (s) => positions.push(s.position) });
  r.play();
  const waits = [];
  for (let w = clock.runNext(); w != null; w = clock.runNext()) waits.push(w);
  assert.deepEqual(waits, [0, 100, 1000, 2000, 100], '1×, the minute-long gap capped at 2 s');
  assert.equal(r.position, 5);
  assert.equal(r.playing, false, 'stops at the end');
  assert.deepEqual(positions.filter((p, i) => i === 0 || p !== positions[i - 1]), [0, 1, 2, 3, 4, 5]);

  r.setSpeed('10');
  r.setSkipIdle(false);
  r.play(); // at the end: starts again
  const waits10 = [];
  for (let w = clock.runNext(); w != null; w = clock.runNext()) waits10.push(w);
  assert.deepEqual(waits10, [0, 10, 100, 6000, 10]);

  r.seek(2);
  r.step();
  assert.equal(r.position, 3);
  r.stepBack();
  r.stepBack();
  assert.equal(r.position, 1);
  r.seek(99);
  assert.equal(r.position, 5);

  r.setSpeed('max');
  r.restart();
  r.play();
  while (clock.runNext() != null);
  assert.equal(r.position, 5);
  assert.equal(r.playing, false);
});

// ---- filters, alerts, format -----------------------------------------------------

test('filters: controls become a server filter without empty lists; the hash round-trips', () => {
  assert.deepEqual(buildFilter(emptyControls()), {});
  const c = { ...emptyControls(), types: ['tool_call'], tools: ['search'], costAbove: 100, errorsOnly: true };
  assert.deepEqual(buildFilter(c), { event_types: ['tool_call'], tool_names: ['search'], cost_threshold_tokens: 100, any: ERRORS_ONLY.any });
  assert.deepEqual(paramsToControls(controlsToParams(c)), c);
  assert.deepEqual(paramsToControls(new URLSearchParams('cost=-3&errors=0')), emptyControls());
  assert.deepEqual(splitList(' a, b,,a ,c'), ['a', 'b', 'c']);
});

test('alerts: filters, validation, firing, persistence and resume position', async () => {
  assert.deepEqual(alertFilter({ kind: 'cost', threshold: 500, models: ['gpt-4o'], tools: [] }), { models: ['gpt-4o'], cost_threshold_tokens: 500 });
  assert.deepEqual(alertFilter({ kind: 'error', tools: ['search'] }), { tool_names: ['search'], any: ERRORS_ONLY.any });
  assert.throws(() => makeDefinition({ kind: 'cost', threshold: '1.5' }), /whole number/);
  assert.throws(() => makeDefinition({ kind: 'other' }), /kind/);
  assert.equal(makeDefinition({ kind: 'error' }).name, 'Errors');

  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  const opened = [];
  const fakeConnect = (opts) => {
    const listeners = {};
    const conn = {
      opts,
      lastOffset: opts.after ?? null,
      epoch: opts.epoch ?? null,
      closed: false,
      on: (t, fn) => ((listeners[t] ??= []).push(fn), () => {}),
      emit: (t, v) => (listeners[t] ?? []).forEach((fn) => fn(v)),
      close() {
        this.closed = true;
      },
    };
    opened.push(conn);
    return conn;
  };
  const notified = [];
  const rt = new AlertsRuntime({ connect: fakeConnect, url: 'ws://x', storage, notify: (f) => notified.push(f) });
  const def = makeDefinition({ kind: 'cost', threshold: 100, notify: true });
  rt.add(def);
  assert.equal(opened.length, 1);
  assert.deepEqual(opened[0].opts.filter, { cost_threshold_tokens: 100 });
  assert.equal(opened[0].opts.after, undefined, 'a new alert starts live');
  const conn = opened[0];
  conn.epoch = 'E';
  conn.lastOffset = 7;
  conn.emit('batch', [{ offset: 7, session_id: 's1', event_type: 'openai_response', cost_tokens: 150, timestamp: new Date().toISOString() }]);
  assert.equal(rt.fired.length, 1);
  assert.equal(rt.fired[0].session_id, 's1');
  assert.equal(rt.unseen, 1);
  assert.equal(notified.length, 1);
  // An old event (catch-up after a reload) fires but does not notify.
  conn.lastOffset = 8;
  conn.emit('batch', [{ offset: 8, session_id: 's2', event_type: 'x', cost_tokens: 999, timestamp: '2020-01-01T00:00:00Z' }]);
  assert.equal(rt.fired.length, 2);
  assert.equal(notified.length, 1);
  rt.markSeen();
  assert.equal(rt.unseen, 0);
  await new Promise((r) => setTimeout(r, 400)); // throttled save
  assert.deepEqual(JSON.parse(store.get(STORAGE_KEYS.positions))[def.id], { after: 8, epoch: 'E' });

  // A new page: definitions, fired list and positions come back; the alert resumes.
  const rt2 = new AlertsRuntime({ connect: fakeConnect, url: 'ws://x', storage });
  rt2.start();
  assert.equal(rt2.definitions.length, 1);
  assert.equal(rt2.fired.length, 2);
  assert.equal(opened.at(-1).opts.after, 8);
  assert.equal(opened.at(-1).opts.epoch, 'E');
  rt2.setEnabled(def.id, false);
  assert.equal(opened.at(-1).closed, true);
  rt2.remove(def.id);
  assert.equal(rt2.definitions.length, 0);
  rt.stop();
});

test('format: durations and error classification', () => {
  assert.equal(formatDuration(85), '85 ms');
  assert.equal(formatDuration(1234), '1.23 s');
  assert.equal(formatDuration(75000), '1 m 15 s');
  assert.equal(formatDuration(undefined), '');
  assert.ok(isErrorEvent({ event_type: 'error' }));
  assert.ok(isErrorEvent({ event_type: 'tool_result', status: 'timeout' }));
  assert.ok(!isErrorEvent({ event_type: 'tool_result', status: 'ok' }));
});
