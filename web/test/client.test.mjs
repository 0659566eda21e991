// The JavaScript client (web/tailbus.js) against a REAL tailbus server, with the
// `ws` package as the WebSocket: publish acks, resume without gap or duplicate
// across a server restart, reconnect with backoff, reset on a new database,
// filter change. Every wait polls with a deadline; nothing asserts on timing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { WebSocket } from 'ws';
import { connect } from '../tailbus.js';
import { TailbusServer, serverBinary, tempDir, waitFor, request } from './harness.mjs';

const binary = serverBinary();
const skip = binary ? false : 'no tailbus binary (set TAILBUS_BINARY)';
const servers = [];
const conns = [];

async function startServer(opts = {}) {
  const s = new TailbusServer({ binary, ...opts });
  servers.push(s);
  return s.start();
}

/** Opens a connection that records everything it emits. */
function open(server, options = {}) {
  const c = connect({ url: server.wsUrl, WebSocket, ...options });
  conns.push(c);
  const rec = { c, events: [], batches: 0, statuses: [], resets: [], errors: [], caughtUp: [], hellos: [] };
  c.on('event', (e) => rec.events.push(e));
  c.on('batch', () => rec.batches++);
  c.on('status', (s) => rec.statuses.push(s));
  c.on('reset', (r) => rec.resets.push(r));
  c.on('error', (e) => rec.errors.push(e));
  c.on('caught_up', (f) => rec.caughtUp.push(f));
  c.on('hello', (h) => rec.hellos.push(h));
  rec.offsets = () => rec.events.map((e) => e.offset);
  rec.connected = () => rec.c.state === 'connected';
  return rec;
}

function ev(session, type, extra = {}) {
  return { session_id: session, event_type: type, ...extra };
}

/** Asserts offsets are strictly increasing and equal to `expected`. */
function assertExactly(offsets, expected, what) {
  for (let i = 1; i < offsets.length; i++) {
    assert.ok(offsets[i] > offsets[i - 1], `${what}: offset ${offsets[i]} after ${offsets[i - 1]}`);
  }
  assert.deepEqual(offsets, expected, `${what}: delivered offsets`);
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

after(async () => {
  for (const c of conns) c.close();
  await Promise.all(servers.map((s) => s.stop({ signal: 'SIGKILL' })));
});

test('publish is acked with the committed offset; a bad event is rejected by request id', { skip, timeout: 60000 }, async () => {
  const server = await startServer();
  const sub = open(server, { after: 0 });
  const pub = open(server);
  await waitFor(() => sub.connected() && pub.connected(), { message: 'both connected' });

  const first = await pub.c.publish(ev('s-pub', 'note', { n: 1 }));
  assert.equal(typeof first, 'number');
  const batch = await pub.c.publish([ev('s-pub', 'note', { n: 2 }), ev('s-pub', 'note', { n: 3 })]);
  assert.deepEqual(batch, [first + 1, first + 2]);

  await assert.rejects(pub.c.publish({ event_type: 'note' }), (err) => {
    assert.match(err.message, /session_id/);
    return true;
  });
  // The connection survives a rejected publish.
  const next = await pub.c.publish(ev('s-pub', 'note', { n: 4 }));
  assert.equal(next, first + 3);

  // The subscriber sees exactly those four, in order, with the published content.
  await waitFor(() => sub.events.length >= 4, { message: '4 events on the subscriber' });
  assertExactly(sub.offsets(), range(first, first + 3), 'subscriber');
  assert.deepEqual(sub.events.map((e) => e.n), [1, 2, 3, 4]);
  assert.ok(sub.caughtUp.length >= 1, 'caught_up received after history');

  // A chat message (background §1) is acked and stored as event type `message`.
  const chat = open(server, { sessionId: 's-chat', after: 0 });
  await waitFor(() => chat.connected(), { message: 'chat connected' });
  const mo = await chat.c.sendMessage('What is the diagnosis?');
  await waitFor(() => chat.events.some((e) => e.offset === mo), { message: 'message delivered' });
  const m = chat.events.find((e) => e.offset === mo);
  assert.equal(m.event_type, 'message');
  assert.equal(m.content, 'What is the diagnosis?');
  assert.ok(chat.events.every((e) => e.session_id === 's-chat'), 'session-bound connection');
});

test('batch frames and single-event frames deliver the same sequence', { skip, timeout: 60000 }, async () => {
  const server = await startServer();
  await server.publish(range(1, 30).map((n) => ev(n % 2 ? 's-a' : 's-b', 'step', { n })));
  const batched = open(server, { after: 0, batchSize: 7 });
  const single = open(server, { after: 0, batchSize: 1 });
  const sessionOnly = open(server, { after: 0, sessionId: 's-b' });
  await waitFor(() => batched.events.length >= 30 && single.events.length >= 30 && sessionOnly.events.length >= 15, {
    message: 'all delivered',
  });
  assertExactly(batched.offsets(), range(1, 30), 'batched');
  assertExactly(single.offsets(), range(1, 30), 'single');
  assert.ok(batched.batches < 30, 'batched frames carry several events');
  assert.equal(single.batches, 30);
  assert.ok(single.events.every((e) => e.type === undefined), 'frame type is not an event field');
  assert.deepEqual(sessionOnly.events.map((e) => e.n), range(1, 15).map((i) => 2 * i));
});

test('resumes after a server restart without gap or duplicate, with backoff', { skip, timeout: 120000 }, async () => {
  const server = await startServer();
  const live = open(server, { after: 0, reconnect: { stableMs: 200 } });
  const tailOnly = open(server); // live only: resumes from the head it saw first
  await waitFor(() => live.connected() && tailOnly.connected(), { message: 'connected' });

  const first = await server.publish(range(1, 50).map((n) => ev(`s${n % 5}`, 'tick', { n })));
  await waitFor(() => live.events.length >= 50, { message: '50 live events' });

  // Graceful stop (close code 1001), then publish nothing while down.
  await server.stop({ signal: 'SIGTERM' });
  const down = await waitFor(() => live.statuses.find((s) => s.state === 'reconnecting'), {
    message: 'reconnecting status',
  });
  assert.ok(down.delayMs >= 0 && down.delayMs < 1000, `first retry under 1 s (got ${down.delayMs})`);
  assert.equal(down.attempt, 1);
  assert.ok(down.retryAt >= Date.now() - 60000);

  await server.start();
  const second = await server.publish(range(51, 120).map((n) => ev(`s${n % 5}`, 'tick', { n })));
  await waitFor(() => live.events.length >= 120 && tailOnly.events.length >= 120, { message: 'catch-up' });
  assertExactly(live.offsets(), range(first[0], second[second.length - 1]), 'resumed subscriber');
  assertExactly(tailOnly.offsets(), range(first[0], second[second.length - 1]), 'live-only subscriber');
  assert.deepEqual(live.events.map((e) => e.n), range(1, 120));

  // Status sequence: connecting → connected → reconnecting (with a delay) → connected.
  const states = live.statuses.map((s) => s.state);
  assert.equal(states[0], 'connecting');
  assert.equal(states[1], 'connected');
  assert.ok(states.indexOf('reconnecting') > 1);
  assert.equal(states[states.length - 1], 'connected');

  // A crash (SIGKILL) while events keep being published before and after it.
  const before = await server.publish(range(121, 140).map((n) => ev('s-crash', 'tick', { n })));
  await server.stop({ signal: 'SIGKILL' });
  await waitFor(() => live.c.state === 'reconnecting', { message: 'reconnecting after crash' });
  await server.start();
  const afterCrash = await server.publish(range(141, 160).map((n) => ev('s-crash', 'tick', { n })));
  await waitFor(() => live.events.length >= 160, { message: 'all 160' });
  assertExactly(live.offsets(), range(first[0], afterCrash[afterCrash.length - 1]), 'after crash');
  assert.ok(before[0] === second[second.length - 1] + 1);
  assert.equal(live.errors.filter((e) => e.closeCode === 4401 || e.closeCode === 4403).length, 0);
});

test('backoff grows with each failed attempt up to the cap and resets once stable', { skip, timeout: 120000 }, async () => {
  const server = await startServer();
  const policy = { initialDelayMs: 100, minDelayMs: 0, maxDelayMs: 400, stableMs: 300 };
  // random() near 1: each delay sits at its ceiling, so the sequence is exact.
  const rec = open(server, { after: 0, reconnect: policy, random: () => 0.999 });
  await waitFor(() => rec.connected(), { message: 'connected' });
  await server.stop();
  await waitFor(() => rec.statuses.filter((s) => s.state === 'reconnecting').length >= 5, {
    timeout: 20000,
    message: '5 failed attempts',
  });
  const delays = rec.statuses.filter((s) => s.state === 'reconnecting').map((s) => s.delayMs);
  assert.deepEqual(delays.slice(0, 5), [99, 199, 399, 399, 399]);
  assert.deepEqual(
    rec.statuses.filter((s) => s.state === 'reconnecting').slice(0, 5).map((s) => s.attempt),
    [1, 2, 3, 4, 5],
  );

  await server.start();
  await waitFor(() => rec.connected(), { timeout: 20000, message: 'reconnected' });
  // Stay connected past stableMs: the next failure starts again from the first ceiling.
  const published = await server.publish([ev('s-stable', 'ping')]);
  await waitFor(() => rec.offsets().includes(published[0]), { message: 'event after reconnect' });
  await new Promise((r) => setTimeout(r, policy.stableMs + 200));
  const n = rec.statuses.length;
  await server.stop();
  const again = await waitFor(() => rec.statuses.slice(n).find((s) => s.state === 'reconnecting'), {
    message: 'reconnecting again',
  });
  assert.equal(again.attempt, 1);
  assert.equal(again.delayMs, 99);
});

test('a new database is surfaced as a reset; delivery restarts at the new earliest', { skip, timeout: 120000 }, async () => {
  const server = await startServer();
  const rec = open(server, { after: 0 });
  await waitFor(() => rec.connected(), { message: 'connected' });
  await server.publish(range(1, 10).map((n) => ev('s-old', 'old', { n })));
  await waitFor(() => rec.events.length >= 10, { message: 'old events' });
  const oldEpoch = rec.c.epoch;
  assert.ok(oldEpoch, 'epoch known after hello');
  assert.equal(rec.c.lastOffset, 10);

  await server.stop();
  await waitFor(() => rec.c.state === 'reconnecting', { message: 'reconnecting' });
  server.db = path.join(tempDir(), 'other.db'); // same port, a different store
  await server.start();
  await server.publish(range(1, 3).map((n) => ev('s-new', 'new', { n })));
  await waitFor(() => rec.resets.length >= 1 && rec.events.length >= 13, { message: 'reset then new events' });

  const reset = rec.resets[0];
  assert.equal(reset.reason, 'epoch_mismatch');
  assert.notEqual(reset.epoch, oldEpoch);
  assert.equal(rec.c.epoch, reset.epoch);
  assert.equal(rec.resets.length, 1, 'one reset surfaced');
  // The new store's offsets start again at 1: after the reset they are delivered, once each.
  assert.deepEqual(rec.offsets().slice(10), [1, 2, 3]);
  assert.deepEqual(rec.events.slice(10).map((e) => e.event_type), ['new', 'new', 'new']);
});

test('subscribe(filter) changes the server-side filter without gap or duplicate', { skip, timeout: 60000 }, async () => {
  const server = await startServer();
  const rec = open(server, { after: 0, filter: { event_types: ['alpha'] } });
  await waitFor(() => rec.connected(), { message: 'connected' });
  assert.deepEqual(rec.hellos[0].filter.event_types, ['alpha']);
  const a = await server.publish([ev('s', 'alpha'), ev('s', 'beta'), ev('s', 'alpha')]);
  await waitFor(() => rec.events.length >= 2, { message: 'two alphas' });
  assert.deepEqual(rec.offsets(), [a[0], a[2]]);

  const hello = await rec.c.subscribe({ event_types: ['beta'], tool_names: ['search'] });
  assert.deepEqual(hello.filter.event_types, ['beta']);
  assert.deepEqual(rec.c.filter, { event_types: ['beta'], tool_names: ['search'] });
  const b = await server.publish([
    ev('s', 'alpha'),
    ev('s', 'beta', { tool_name: 'search' }),
    ev('s', 'beta', { tool_name: 'fetch' }),
  ]);
  await waitFor(() => rec.events.length >= 3, { message: 'the beta/search event' });
  assert.deepEqual(rec.offsets(), [a[0], a[2], b[1]]);

  // Rewinding: subscribe with an explicit position replays matching history once.
  await rec.c.subscribe({ any: [{ event_types: ['beta'] }, { statuses: ['error'] }] }, { after: 0 });
  await waitFor(() => rec.events.length >= 6, { message: 'rewound history' });
  assert.deepEqual(rec.offsets().slice(3), [a[1], b[1], b[2]]);

  // An invalid filter is refused by the server; the connection keeps working.
  await assert.rejects(rec.c.subscribe({ no_such_key: [1] }), /no_such_key/);
  const c = await server.publish([ev('s', 'beta')]);
  await waitFor(() => rec.offsets().includes(c[0]), { message: 'delivery after a refused filter' });
  const sinceRewind = rec.offsets().slice(3);
  assertExactly(sinceRewind, [a[1], b[1], b[2], c[0]], 'since the rewind');

  // After a restart the new filter is the one resumed.
  await server.stop();
  await server.start();
  const d = await server.publish([ev('s', 'alpha'), ev('s', 'beta')]);
  await waitFor(() => rec.offsets().includes(d[1]), { timeout: 20000, message: 'beta after restart' });
  assert.ok(!rec.offsets().includes(d[0]));
});

test('close() stops for good and rejects publishes', { skip, timeout: 30000 }, async () => {
  const server = await startServer();
  const rec = open(server);
  await waitFor(() => rec.connected(), { message: 'connected' });
  rec.c.close();
  assert.equal(rec.c.state, 'closed');
  assert.equal(rec.statuses[rec.statuses.length - 1].state, 'closed');
  await assert.rejects(rec.c.publish(ev('s', 'x')), /closed/);
  // The server still answers.
  const r = await request('GET', `${server.httpUrl}/api/status`);
  assert.equal(r.status, 200);
});

test('with --auth-secret-file: the token option is sent; a missing or forbidden token stops the client with 4401/4403', { skip, timeout: 60000 }, async () => {
  const { execFileSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const secretFile = path.join(tempDir(), 'secret');
  fs.writeFileSync(secretFile, 'web-client-test-secret-0123456789abcdef\n', { mode: 0o600 });
  const mint = (sessions, scope) =>
    execFileSync(binary, ['token', '--secret-file', secretFile, '--sub', 'web-test', '--sessions', sessions, '--scope', scope, '--ttl', '10m'])
      .toString()
      .trim();
  const server = await startServer({ args: ['--auth-secret-file', secretFile] });
  const all = mint('*', 'subscribe,publish');
  const s1Only = mint('s1', 'subscribe');

  const ok = open(server, { token: all, after: 0 });
  await waitFor(() => ok.connected(), { message: 'connected with a token' });
  const offset = await ok.c.publish(ev('s1', 'note'));
  await waitFor(() => ok.offsets().includes(offset), { message: 'own event delivered' });

  const closedWith = async (rec, code, what) => {
    await waitFor(() => rec.c.state === 'closed', { message: `${what}: closed` });
    assert.equal(rec.statuses.at(-1).code, code, `${what}: close code`);
    assert.ok(rec.errors.some((e) => e.closeCode === code), `${what}: an error event with closeCode ${code}`);
    assert.equal(rec.statuses.filter((s) => s.state === 'reconnecting').length, 0, `${what}: not retried`);
  };
  await closedWith(open(server, { after: 0 }), 4401, 'no token');
  await closedWith(open(server, { token: all.slice(0, -2) + (all.endsWith('AA') ? 'BB' : 'AA'), after: 0 }), 4401, 'forged token');
  const narrow = open(server, { token: s1Only, after: 0 });
  await closedWith(narrow, 4403, 'all-session feed with a one-session token');
  assert.ok(narrow.errors.some((e) => e.code === 'forbidden' && /sessions \["\*"\]/.test(e.message)), 'the error frame says why');

  // The same one-session token may follow its own session.
  const own = open(server, { token: s1Only, sessionId: 's1', after: 0 });
  await waitFor(() => own.offsets().includes(offset), { message: 'session-bound stream with a session token' });

  // The HTTP API takes the same token (?token= or Authorization: Bearer).
  assert.equal((await request('GET', `${server.httpUrl}/api/sessions/s1`)).status, 401);
  assert.equal((await request('GET', `${server.httpUrl}/api/sessions/s1?token=${s1Only}`)).status, 200);
});
