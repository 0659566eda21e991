// tailbus.js — the JavaScript client of tailbus: one dependency-free ES module.
//
//   import { connect } from './tailbus.js';
//   const tb = connect({ url: 'ws://127.0.0.1:8080', after: 0 });
//   tb.on('event', (e) => console.log(e.offset, e.event_type));
//   tb.on('status', (s) => console.log(s.state, s.delayMs));
//   const offset = await tb.publish({ session_id: 's1', event_type: 'note' });
//
// Guarantees (see docs/CLIENT.md):
// - Every event handed to 'event' / 'batch' listeners has an offset greater than
//   the one before it: an offset is never delivered twice, even across
//   reconnects, re-subscriptions and duplicated frames.
// - After a dropped connection it reconnects with exponential backoff and full
//   jitter (first retry under 1 s, capped at 30 s, reset once a connection has
//   been stable) and resumes with `after=<last delivered offset>&epoch=<epoch>`,
//   so nothing committed in between is missed.
// - A `reset` from the server (the database was replaced, or the position was
//   evicted) is surfaced as a 'reset' event before delivery continues.
//
// Works in browsers (global WebSocket) and in Node when given a WebSocket
// implementation: connect({ url, WebSocket: (await import('ws')).WebSocket }).

/**
 * Close codes after which reconnecting cannot help (docs/PROTOCOL.md): 4003
 * origin not allowed (--allowed-origins), 4400 bad path or query parameter (e.g.
 * an invalid filter), 4401 no valid token (missing, forged or expired: get a new
 * one), 4403 the token does not allow this (scope or session), 4404 no such
 * endpoint, 4409 reset required (strict=1). Every other code (1001 shutdown,
 * 1006 dropped, 1011, 4408 stalled, 4429 too many connections, …) is retried
 * with backoff.
 */
export const FATAL_CLOSE_CODES = new Set([4003, 4400, 4401, 4403, 4404, 4409]);
const CLOSE_CODE_NAMES = {
  4003: 'origin_not_allowed',
  4400: 'bad_request',
  4401: 'unauthorized',
  4403: 'forbidden',
  4404: 'not_found',
  4409: 'reset_required',
};

export const DEFAULT_RECONNECT = Object.freeze({
  initialDelayMs: 1000, // ceiling of the first retry's delay (the delay is random below it)
  minDelayMs: 100, // smallest delay, so a flapping server is not hammered
  maxDelayMs: 30000, // cap of every delay
  multiplier: 2, // ceiling growth per failed attempt
  stableMs: 10000, // a connection this old resets the backoff
});

/**
 * Delay before reconnect attempt `attempt` (1-based): "full jitter" — uniform
 * between minDelayMs and min(maxDelayMs, initialDelayMs * multiplier^(attempt-1)).
 * @param {number} attempt
 * @param {Partial<typeof DEFAULT_RECONNECT>} [policy]
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, policy = {}, random = Math.random) {
  const p = { ...DEFAULT_RECONNECT, ...policy };
  const exponent = Math.max(0, Math.min(attempt - 1, 52));
  const ceiling = Math.min(p.maxDelayMs, p.initialDelayMs * Math.pow(p.multiplier, exponent));
  const floor = Math.min(p.minDelayMs, ceiling);
  const r = Math.min(Math.max(random(), 0), 0.999999);
  return Math.floor(floor + r * (ceiling - floor));
}

/**
 * Builds the WebSocket URL of a subscription.
 * `url` may be a server base (`ws://host:8080`, `http://host:8080`, `/`), or a
 * full endpoint (`ws://host:8080/ws`, `…/ws/events/ID`); http(s) becomes ws(s).
 * @param {object} o
 */
export function buildUrl(o) {
  const base = typeof location !== 'undefined' ? location.href : 'http://localhost/';
  const u = new URL(o.url ?? '/', base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  const path = u.pathname.replace(/\/+$/, '');
  const q = u.searchParams;
  if (path === '' || !/\/ws(\/|$)/.test(path)) {
    // A session-bound endpoint; an id the server cannot take in a path (it
    // decodes %2F before routing) goes in ?session_id= instead.
    const inPath = o.sessionId != null && !/[/?#]/.test(o.sessionId) && o.sessionId !== '.' && o.sessionId !== '..';
    u.pathname = path + (inPath ? '/ws/events/' + encodeURIComponent(o.sessionId) : '/ws');
    if (o.sessionId != null && !inPath) q.set('session_id', o.sessionId);
  }
  if (o.filter && Object.keys(o.filter).length > 0) q.set('filter', JSON.stringify(o.filter));
  if (o.after != null) q.set('after', String(o.after));
  if (o.epoch != null && o.after != null) q.set('epoch', String(o.epoch));
  if (o.batchSize != null) q.set('batch_size', String(o.batchSize));
  if (o.batchWindowMs != null) q.set('batch_window_ms', String(o.batchWindowMs));
  if (o.strict) q.set('strict', '1');
  if (o.token != null && o.token !== '') q.set('token', o.token);
  return u.toString();
}

/** Minimal listener registry; a throwing listener never breaks delivery. */
class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
  }
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }
  off(type, fn) {
    this.listeners.get(type)?.delete(fn);
  }
  has(type) {
    return (this.listeners.get(type)?.size ?? 0) > 0;
  }
  emit(type, value) {
    const set = this.listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(value);
      } catch (err) {
        // A listener's bug must not stop the stream; report it asynchronously.
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}

function textOf(data) {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return String(data);
}

/** An error from the server or the connection. */
export class TailbusError extends Error {
  constructor(message, { code, requestId, closeCode, frame } = {}) {
    super(message);
    this.name = 'TailbusError';
    this.code = code;
    this.requestId = requestId;
    this.closeCode = closeCode;
    this.frame = frame;
  }
}

/**
 * Opens a subscription. See tailbus.d.ts for the option and event types.
 * @param {import('./tailbus').ConnectOptions} options
 * @returns {import('./tailbus').TailbusConnection}
 */
export function connect(options = {}) {
  return new Connection(options);
}

class Connection {
  constructor(options) {
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== 'function') {
      throw new TypeError('tailbus: no WebSocket implementation; pass connect({ WebSocket })');
    }
    this._WS = WS;
    this._opts = {
      url: options.url,
      sessionId: options.sessionId ?? null,
      filter: options.filter ?? null,
      batchSize: options.batchSize ?? null,
      batchWindowMs: options.batchWindowMs ?? null,
      token: options.token ?? null,
      strict: !!options.strict,
    };
    this._reconnect = { ...DEFAULT_RECONNECT, ...(options.reconnect ?? {}) };
    this._autoReconnect = options.reconnect !== false;
    this._random = options.random ?? Math.random;
    this._pingIntervalMs = options.pingIntervalMs ?? 25000;
    this._publishTimeoutMs = options.publishTimeoutMs ?? 30000;
    this._emitter = new Emitter();

    // Position: offsets <= _position are never delivered. null = live only.
    this._position = options.after != null ? Number(options.after) : null;
    this._epoch = options.epoch ?? null;
    this._head = null;
    this._earliest = null;
    this._hello = null;

    this._state = 'idle';
    this._ws = null;
    this._attempt = 0; // failed attempts since the last stable connection
    this._timer = null;
    this._stableTimer = null;
    this._pingTimer = null;
    this._lastFrameAt = 0;
    this._closedByUser = false;
    this._connectedAt = 0;
    this._helloSeen = false; // on the current socket
    this._resetThisSocket = false;
    this._nextRequestId = 1;
    /** @type {Map<string, {resolve, reject, single:boolean, timer:any}>} */
    this._pending = new Map();
    /** Frames waiting for a connection (publish before connected). */
    this._outbox = [];
    /** A subscribe waiting for its hello: {resolve, reject, previous}. */
    this._subscribing = null;

    queueMicrotask(() => this._dial('connecting'));
  }

  // ---- public API --------------------------------------------------------

  on(type, fn) {
    return this._emitter.on(type, fn);
  }
  off(type, fn) {
    this._emitter.off(type, fn);
  }
  get lastOffset() {
    return this._position;
  }
  get epoch() {
    return this._epoch;
  }
  get head() {
    return this._head;
  }
  get state() {
    return this._state;
  }
  get filter() {
    return this._opts.filter;
  }
  get hello() {
    return this._hello;
  }
  get url() {
    return buildUrl(this._urlOptions());
  }

  /**
   * Appends one event (resolves with its offset) or an array of events
   * (resolves with their offsets) once the server has committed them.
   */
  publish(eventOrEvents) {
    const single = !Array.isArray(eventOrEvents);
    const frame = { type: 'publish', request_id: '' };
    if (single) frame.event = eventOrEvents;
    else frame.events = eventOrEvents;
    return this._request(frame, single);
  }

  /** A user chat message (background §1): stored as an event of type `message`. */
  sendMessage(content, sessionId = this._opts.sessionId) {
    if (sessionId == null) return Promise.reject(new TypeError('sendMessage: no session id'));
    return this._request({ type: 'message', request_id: '', session_id: sessionId, content }, true);
  }

  /**
   * Replaces the server-side filter on the open connection. Delivery continues
   * after the last delivered offset (or after `opts.after`, which rewinds the
   * position). Resolves with the server's new hello.
   */
  subscribe(filter, opts = {}) {
    if (this._closedByUser) return Promise.reject(new TailbusError('connection closed'));
    const previous = { filter: this._opts.filter, position: this._position };
    this._opts.filter = filter && Object.keys(filter).length > 0 ? filter : null;
    if (opts.after !== undefined) this._position = opts.after == null ? null : Number(opts.after);
    if (opts.batchSize !== undefined) this._opts.batchSize = opts.batchSize;
    if (opts.batchWindowMs !== undefined) this._opts.batchWindowMs = opts.batchWindowMs;
    if (this._subscribing) {
      this._subscribing.reject(new TailbusError('superseded by a newer subscribe'));
      this._subscribing = null;
    }
    return new Promise((resolve, reject) => {
      if (this._state !== 'connected' || !this._isOpen()) {
        // The next connection opens with the new filter and position.
        const off = this._emitter.on('hello', (h) => {
          off();
          resolve(h);
        });
        return;
      }
      const frame = this._subscribeFrame();
      this._subscribing = { resolve, reject, previous, requestId: frame.request_id };
      this._sendFrame(frame);
    });
  }

  /** Sends an application-level ping; resolves when the pong arrives. */
  ping() {
    return new Promise((resolve, reject) => {
      const off = this._emitter.on('pong', () => {
        off();
        resolve();
      });
      if (!this._sendFrame({ type: 'ping' })) {
        off();
        reject(new TailbusError('not connected'));
      }
    });
  }

  /** Closes for good: no reconnect; pending publishes are rejected. */
  close(code = 1000, reason = 'client closed') {
    if (this._closedByUser) return;
    this._closedByUser = true;
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
    }
    this._failPending(new TailbusError('connection closed'));
    this._setState({ state: 'closed', reason: 'closed by client' });
  }

  // ---- connection lifecycle ---------------------------------------------

  _urlOptions() {
    return {
      ...this._opts,
      after: this._position,
      epoch: this._position != null ? this._epoch : null,
    };
  }

  _isOpen() {
    return this._ws != null && this._ws.readyState === 1;
  }

  _setState(status) {
    this._state = status.state;
    this._emitter.emit('status', status);
  }

  _dial(state) {
    if (this._closedByUser) return;
    this._timer = null;
    if (state === 'connecting') this._setState({ state: 'connecting', attempt: 0 });
    let ws;
    try {
      ws = new this._WS(this.url);
    } catch (err) {
      this._emitter.emit('error', new TailbusError(String(err?.message ?? err)));
      this._scheduleReconnect({ code: 0, reason: String(err?.message ?? err) });
      return;
    }
    this._ws = ws;
    this._helloSeen = false;
    this._resetThisSocket = false;
    try {
      ws.binaryType = 'arraybuffer';
    } catch {
      /* optional */
    }
    ws.onopen = () => {
      this._lastFrameAt = Date.now();
      this._startPing();
    };
    ws.onmessage = (ev) => this._onFrameText(textOf(ev.data));
    ws.onerror = () => {
      /* followed by onclose; the close code tells more */
    };
    ws.onclose = (ev) => this._onClose(ws, ev?.code ?? 1006, ev?.reason ?? '');
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._detach(ws);
    this._ws = null;
    this._clearTimers();
    // Unacked requests: their fate is unknown; the caller may retry (same event_id is idempotent).
    this._failPending(
      new TailbusError(`connection lost before the ack (close code ${code})`, { closeCode: code }),
    );
    if (this._subscribing) {
      // The next connection carries the new filter anyway.
      const s = this._subscribing;
      this._subscribing = null;
      const off = this._emitter.on('hello', (h) => {
        off();
        s.resolve(h);
      });
    }
    if (this._closedByUser) return;
    if (FATAL_CLOSE_CODES.has(code) || !this._autoReconnect) {
      const fatal = FATAL_CLOSE_CODES.has(code);
      if (fatal) {
        this._emitter.emit(
          'error',
          new TailbusError(reason || `rejected by the server (close code ${code})`, {
            closeCode: code,
            code: CLOSE_CODE_NAMES[code] ?? 'closed',
          }),
        );
      }
      this._closedByUser = true;
      this._failPending(new TailbusError('connection closed'));
      this._setState({ state: 'closed', code, reason: reason || (fatal ? 'rejected' : 'closed') });
      return;
    }
    this._scheduleReconnect({ code, reason });
  }

  _scheduleReconnect({ code, reason }) {
    if (this._closedByUser) return;
    this._attempt += 1;
    const delayMs = backoffDelay(this._attempt, this._reconnect, this._random);
    this._timer = setTimeout(() => this._dial('reconnecting'), delayMs);
    this._setState({
      state: 'reconnecting',
      attempt: this._attempt,
      delayMs,
      retryAt: Date.now() + delayMs,
      code,
      reason,
    });
  }

  _clearTimers() {
    clearTimeout(this._timer);
    clearTimeout(this._stableTimer);
    clearInterval(this._pingTimer);
    this._timer = this._stableTimer = this._pingTimer = null;
  }

  _startPing() {
    clearInterval(this._pingTimer);
    if (!(this._pingIntervalMs > 0)) return;
    this._pingTimer = setInterval(() => {
      if (!this._isOpen()) return;
      // Nothing heard for two intervals: the connection is dead (half-open).
      if (Date.now() - this._lastFrameAt > 2 * this._pingIntervalMs + 1000) {
        try {
          this._ws.close(4000, 'keepalive timeout');
        } catch {
          /* ignore */
        }
        const ws = this._ws;
        if (ws) this._onClose(ws, 4000, 'keepalive timeout');
        return;
      }
      this._sendFrame({ type: 'ping' });
    }, this._pingIntervalMs);
  }

  _sendFrame(frame) {
    if (!this._isOpen()) return false;
    try {
      this._ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  _subscribeFrame() {
    const f = { type: 'subscribe', request_id: `s${this._nextRequestId++}`, filter: this._opts.filter ?? {} };
    if (this._position != null) {
      f.after = this._position;
      if (this._epoch != null) f.epoch = this._epoch;
    }
    if (this._opts.batchSize != null) f.batch_size = this._opts.batchSize;
    if (this._opts.batchWindowMs != null) f.batch_window_ms = this._opts.batchWindowMs;
    return f;
  }

  // ---- requests (publish / message) -------------------------------------

  _request(frame, single) {
    if (this._closedByUser) return Promise.reject(new TailbusError('connection closed'));
    const id = `r${this._nextRequestId++}`;
    frame.request_id = id;
    return new Promise((resolve, reject) => {
      const timer =
        this._publishTimeoutMs > 0
          ? setTimeout(() => {
              if (!this._pending.has(id)) return;
              this._pending.delete(id);
              this._outbox = this._outbox.filter((f) => f.request_id !== id);
              reject(new TailbusError(`no ack within ${this._publishTimeoutMs} ms`, { requestId: id }));
            }, this._publishTimeoutMs)
          : null;
      this._pending.set(id, { resolve, reject, single, timer, sent: false });
      if (this._state === 'connected' && this._sendFrame(frame)) {
        this._pending.get(id).sent = true;
      } else {
        this._outbox.push(frame); // sent as soon as the next hello arrives
      }
    });
  }

  _flushOutbox() {
    const frames = this._outbox;
    this._outbox = [];
    for (const f of frames) {
      const p = this._pending.get(f.request_id);
      if (!p) continue;
      if (this._sendFrame(f)) p.sent = true;
      else this._outbox.push(f);
    }
  }

  _failPending(err) {
    // Requests never sent stay queued for the next connection, unless closing for good.
    for (const [id, p] of this._pending) {
      if (!p.sent && !this._closedByUser) continue;
      this._pending.delete(id);
      clearTimeout(p.timer);
      const e = new TailbusError(err.message, { ...err, requestId: id, closeCode: err.closeCode });
      p.reject(e);
    }
    if (this._closedByUser) this._outbox = [];
  }

  _settle(id, fn) {
    const p = this._pending.get(String(id));
    if (!p) return false;
    this._pending.delete(String(id));
    clearTimeout(p.timer);
    fn(p);
    return true;
  }

  // ---- frames -------------------------------------------------------------

  _onFrameText(text) {
    this._lastFrameAt = Date.now();
    if (text === 'pong') return; // plain-text keepalive answer
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._emitter.emit('error', new TailbusError('unparsable frame from the server'));
      return;
    }
    if (frame === null || typeof frame !== 'object') return;
    if (frame.type === 'batch' && Array.isArray(frame.events)) return this._deliver(frame.events);
    if (typeof frame.offset === 'number' && typeof frame.event_type === 'string') {
      // A single-event frame: {"type":"event", <event fields>}. If the producer
      // gave the event its own `type` member, that one wins and is kept.
      const event = { ...frame };
      if (event.type === 'event') delete event.type;
      return this._deliver([event]);
    }
    switch (frame.type) {
      case 'hello':
        return this._onHello(frame);
      case 'caught_up':
        if (typeof frame.offset === 'number') this._head = Math.max(this._head ?? 0, frame.offset);
        return this._emitter.emit('caught_up', frame);
      case 'reset':
        return this._onReset(frame);
      case 'ack':
        return this._onAck(frame);
      case 'error':
        return this._onError(frame);
      case 'pong':
        return this._emitter.emit('pong', frame);
      default:
        return undefined; // unknown frame types are ignored (forward compatibility)
    }
  }

  _onHello(hello) {
    this._hello = hello;
    this._helloSeen = true;
    if (typeof hello.head === 'number') this._head = Math.max(this._head ?? 0, hello.head);
    if (typeof hello.earliest === 'number') this._earliest = hello.earliest;
    const epochChanged = this._epoch != null && hello.epoch != null && hello.epoch !== this._epoch;
    if (epochChanged && this._position != null) {
      // The store behind the server is not the one our offsets came from. The
      // server follows with a `reset`; act on it now so no event of the new
      // store is mistaken for one already delivered.
      this._applyReset({
        type: 'reset',
        reason: 'epoch_mismatch',
        epoch: hello.epoch,
        earliest: hello.earliest ?? 1,
      });
    }
    if (hello.epoch != null) this._epoch = hello.epoch;
    if (epochChanged) this._head = hello.head ?? null;
    if (this._position == null && typeof hello.head === 'number') {
      // Live only: our position is the head now, so a reconnect resumes from here.
      this._position = hello.head;
    }
    const wasConnected = this._state === 'connected';
    if (!wasConnected) {
      this._connectedAt = Date.now();
      clearTimeout(this._stableTimer);
      this._stableTimer = setTimeout(() => {
        this._attempt = 0;
      }, this._reconnect.stableMs);
      this._setState({ state: 'connected', epoch: this._epoch, head: hello.head, attempt: this._attempt });
    }
    if (this._subscribing) {
      const s = this._subscribing;
      this._subscribing = null;
      s.resolve(hello);
    }
    this._emitter.emit('hello', hello);
    this._flushOutbox();
  }

  _applyReset(frame) {
    this._resetThisSocket = true;
    if (frame.epoch != null) this._epoch = frame.epoch;
    const earliest = typeof frame.earliest === 'number' ? frame.earliest : 1;
    this._position = Math.max(0, earliest - 1);
    if (frame.reason === 'epoch_mismatch') this._head = null;
    this._emitter.emit('reset', frame);
  }

  _onReset(frame) {
    // The server's reset after a hello whose epoch change we already acted on.
    const handled =
      this._resetThisSocket && frame.reason === 'epoch_mismatch' && frame.epoch === this._epoch;
    if (!handled) this._applyReset(frame);
  }

  _onAck(frame) {
    const offsets = Array.isArray(frame.offsets) ? frame.offsets : frame.offset != null ? [frame.offset] : [];
    this._settle(frame.request_id, (p) => p.resolve(p.single ? offsets[0] : offsets));
  }

  _onError(frame) {
    const err = new TailbusError(frame.error ?? frame.message ?? 'server error', {
      code: frame.code,
      requestId: frame.request_id,
      frame,
    });
    if (frame.request_id != null && this._settle(frame.request_id, (p) => p.reject(err))) return;
    if (this._subscribing && (frame.request_id == null || String(frame.request_id) === this._subscribing.requestId)) {
      // The server refused the new filter and kept the old subscription. Events
      // were dropped while waiting; resubscribe with the old filter from our
      // position so none is lost.
      const s = this._subscribing;
      this._subscribing = null;
      this._opts.filter = s.previous.filter;
      this._sendFrame(this._subscribeFrame());
      s.reject(err);
    }
    this._emitter.emit('error', err);
  }

  _deliver(events) {
    if (this._subscribing) return; // frames of the replaced subscription; re-sent after its hello
    const out = [];
    for (const e of events) {
      if (e == null || typeof e.offset !== 'number') continue;
      if (this._position != null && e.offset <= this._position) continue; // duplicate
      this._position = e.offset;
      out.push(e);
    }
    if (out.length === 0) return;
    const last = out[out.length - 1].offset;
    if (this._head == null || last > this._head) this._head = last;
    if (this._emitter.has('event')) for (const e of out) this._emitter.emit('event', e);
    this._emitter.emit('batch', out);
  }
}
