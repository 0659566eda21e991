// Alerts: user-defined cost and error alerts. Each enabled alert is its own
// server-side filter subscription (a tailbus.js connection); a matching event
// "fires" it. Definitions, fired alerts and each alert's position (offset +
// epoch, so alerts raised while the page was closed are not missed) persist in
// localStorage. Optional browser notifications.
import { ERRORS_ONLY } from './filters.js';
import { eventTime } from './format.js';

export const STORAGE_KEYS = Object.freeze({
  definitions: 'tailbus.alerts.v1',
  fired: 'tailbus.alerts.fired.v1',
  positions: 'tailbus.alerts.positions.v1',
  seen: 'tailbus.alerts.seen.v1',
  total: 'tailbus.alerts.total.v1',
});
export const FIRED_CAP = 200;
/** Only events this recent raise a browser notification (older ones are catch-up). */
export const NOTIFY_MAX_AGE_MS = 60000;
const NOTIFY_MIN_INTERVAL_MS = 5000;

/**
 * @typedef {object} AlertDefinition
 * @property {string} id
 * @property {string} name
 * @property {'cost'|'error'} kind
 * @property {number} [threshold] cost alerts: fire when an event's cost_tokens is above this
 * @property {string[]} models    optional restriction
 * @property {string[]} tools     optional restriction
 * @property {boolean} notify     raise a browser notification
 * @property {boolean} enabled
 */

/** The server-side filter of an alert (docs/FILTERS.md). */
export function alertFilter(def) {
  const f = {};
  if (def.tools?.length) f.tool_names = [...def.tools];
  if (def.models?.length) f.models = [...def.models];
  if (def.kind === 'cost') f.cost_threshold_tokens = Math.max(0, Math.floor(Number(def.threshold) || 0));
  else f.any = structuredClone(ERRORS_ONLY.any);
  return f;
}

/** "cost above 1,000 tokens · models gpt-4o · tools search" */
export function describeAlert(def) {
  const parts = [def.kind === 'cost' ? `any event costing more than ${Number(def.threshold).toLocaleString('en-US')} tokens` : 'any error event or failed status'];
  if (def.models?.length) parts.push(`models ${def.models.join(', ')}`);
  if (def.tools?.length) parts.push(`tools ${def.tools.join(', ')}`);
  return parts.join(' · ');
}

/** Validates form input; returns a definition or throws with a message for the user. */
export function makeDefinition({ name, kind, threshold, models = [], tools = [], notify = false }) {
  if (kind !== 'cost' && kind !== 'error') throw new Error('Choose a kind of alert.');
  const def = {
    id: `a${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`,
    name: String(name ?? '').trim(),
    kind,
    models,
    tools,
    notify: !!notify,
    enabled: true,
    created: new Date().toISOString(),
  };
  if (kind === 'cost') {
    const n = Number(threshold);
    if (threshold === '' || threshold == null || !Number.isInteger(n) || n < 0) {
      throw new Error('The cost threshold must be a whole number of tokens (0 or more).');
    }
    def.threshold = n;
  }
  if (!def.name) def.name = kind === 'cost' ? `Cost above ${def.threshold.toLocaleString('en-US')} tokens` : 'Errors';
  return def;
}

function readJson(storage, key, fallback) {
  try {
    const v = JSON.parse(storage.getItem(key) ?? 'null');
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

function writeJson(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: alerts still work for this page */
  }
}

/** Runs the enabled alerts; the view and the nav badge listen to it. */
export class AlertsRuntime {
  /**
   * @param {object} o
   * @param {(opts: object) => any} o.connect  tailbus.js connect
   * @param {string} o.url                     WebSocket base URL
   * @param {string|null} [o.token]
   * @param {Storage} [o.storage]
   * @param {(fired: object, def: AlertDefinition) => void} [o.notify]
   */
  constructor({ connect, url, token = null, storage = globalThis.localStorage, notify = () => {} }) {
    this._connect = connect;
    this._url = url;
    this._token = token;
    this._storage = storage;
    this._notify = notify;
    /** @type {AlertDefinition[]} */
    this.definitions = readJson(storage, STORAGE_KEYS.definitions, []);
    this.fired = readJson(storage, STORAGE_KEYS.fired, []);
    this._positions = readJson(storage, STORAGE_KEYS.positions, {});
    this.seenCount = readJson(storage, STORAGE_KEYS.seen, 0); // fired ever seen
    this.totalFired = readJson(storage, STORAGE_KEYS.total, this.fired.length);
    /** @type {Map<string, {conn: any, status: object}>} */
    this._running = new Map();
    this._listeners = new Set();
    this._saveTimer = null;
    this._lastNotified = new Map();
  }

  onChange(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }
  _changed() {
    for (const fn of this._listeners) fn();
  }

  get unseen() {
    return Math.max(0, this.totalFired - this.seenCount);
  }

  markSeen() {
    if (this.seenCount === this.totalFired) return;
    this.seenCount = this.totalFired;
    writeJson(this._storage, STORAGE_KEYS.seen, this.seenCount);
    this._changed();
  }

  status(id) {
    return this._running.get(id)?.status ?? { state: 'off' };
  }

  start() {
    for (const def of this.definitions) if (def.enabled) this._open(def);
  }

  stop() {
    for (const id of [...this._running.keys()]) this._closeConn(id);
  }

  add(def) {
    this.definitions.push(def);
    this._saveDefinitions();
    if (def.enabled) this._open(def);
    this._changed();
  }

  remove(id) {
    this._closeConn(id);
    this.definitions = this.definitions.filter((d) => d.id !== id);
    delete this._positions[id];
    this._saveDefinitions();
    writeJson(this._storage, STORAGE_KEYS.positions, this._positions);
    this._changed();
  }

  setEnabled(id, enabled) {
    const def = this.definitions.find((d) => d.id === id);
    if (!def) return;
    def.enabled = enabled;
    this._saveDefinitions();
    if (enabled) {
      // Re-enabled: from now on (what happened while disabled is not alerted).
      delete this._positions[id];
      this._open(def);
    } else this._closeConn(id);
    this._changed();
  }

  setNotify(id, notify) {
    const def = this.definitions.find((d) => d.id === id);
    if (!def) return;
    def.notify = notify;
    this._saveDefinitions();
    this._changed();
  }

  clearFired() {
    this.fired = [];
    this.seenCount = this.totalFired;
    writeJson(this._storage, STORAGE_KEYS.fired, this.fired);
    writeJson(this._storage, STORAGE_KEYS.seen, this.seenCount);
    this._changed();
  }

  _saveDefinitions() {
    writeJson(this._storage, STORAGE_KEYS.definitions, this.definitions);
  }

  _saveSoon() {
    if (this._saveTimer) return;
    this._saveTimer = setTimeout(() => {
      this._saveTimer = null;
      writeJson(this._storage, STORAGE_KEYS.fired, this.fired);
      writeJson(this._storage, STORAGE_KEYS.positions, this._positions);
      writeJson(this._storage, STORAGE_KEYS.total, this.totalFired);
    }, 300);
  }

  _open(def) {
    this._closeConn(def.id);
    const pos = this._positions[def.id];
    const conn = this._connect({
      url: this._url,
      token: this._token,
      filter: alertFilter(def),
      after: pos?.after ?? undefined,
      epoch: pos?.epoch ?? undefined,
    });
    const entry = { conn, status: { state: 'connecting' } };
    this._running.set(def.id, entry);
    const remember = () => {
      if (conn.lastOffset != null) {
        this._positions[def.id] = { after: conn.lastOffset, epoch: conn.epoch };
        this._saveSoon();
      }
    };
    conn.on('status', (s) => {
      entry.status = s;
      this._changed();
    });
    conn.on('hello', remember);
    conn.on('reset', remember);
    conn.on('batch', (events) => {
      for (const e of events) this._fire(def, e);
      remember();
      this._changed();
    });
  }

  _closeConn(id) {
    const r = this._running.get(id);
    if (!r) return;
    r.conn.close();
    this._running.delete(id);
  }

  _fire(def, e) {
    const fired = {
      key: `${def.id}:${e.offset}`,
      alertId: def.id,
      alertName: def.name,
      kind: def.kind,
      offset: e.offset,
      session_id: e.session_id,
      event_type: e.event_type,
      tool_name: e.tool_name ?? null,
      model: e.model ?? null,
      status: e.status ?? null,
      cost_tokens: e.cost_tokens ?? null,
      message: typeof e.error === 'string' ? e.error : typeof e.message === 'string' ? e.message : null,
      timestamp: e.timestamp ?? null,
      firedAt: new Date().toISOString(),
    };
    this.fired.unshift(fired);
    if (this.fired.length > FIRED_CAP) this.fired.length = FIRED_CAP;
    this.totalFired += 1;
    this._saveSoon();
    const t = eventTime(e);
    const recent = !Number.isFinite(t) || Date.now() - t < NOTIFY_MAX_AGE_MS;
    const last = this._lastNotified.get(def.id) ?? 0;
    if (def.notify && recent && Date.now() - last >= NOTIFY_MIN_INTERVAL_MS) {
      this._lastNotified.set(def.id, Date.now());
      try {
        this._notify(fired, def);
      } catch {
        /* notifications are best effort */
      }
    }
  }
}
