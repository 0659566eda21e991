// The HTTP API of the server that serves this page (issue 3 / docs/PROTOCOL.md),
// plus the access token taken from the page URL (?token=…).

const pageParams = new URLSearchParams(location.search);

/** Access token from `?token=` (sent as `?token=` and as a Bearer header). */
export const token = pageParams.get('token') || null;

/** Base of the HTTP API (same origin as the page). */
export const httpBase = location.origin;

/** Base of the WebSocket endpoints. */
export const wsBase = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;

/** An HTTP error with the status and the server's JSON error, if any. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

const authListeners = new Set();
/** fn({status, message}) when the server refuses our credentials. */
export function onAuthProblem(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}
export function reportAuthProblem(problem) {
  for (const fn of authListeners) fn(problem);
}

function url(path, query) {
  const u = new URL(path, httpBase);
  if (query) {
    for (const [k, v] of Object.entries(query)) if (v != null && v !== '') u.searchParams.set(k, String(v));
  }
  if (token) u.searchParams.set('token', token);
  return u;
}

async function call(method, path, query, { timeoutMs = 15000 } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(url(path, query), { method, headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new ApiError(0, `cannot reach the server (${err.name === 'TimeoutError' ? 'timeout' : err.message})`);
  }
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const message = body?.error ?? (text.slice(0, 200) || res.statusText);
    const err = new ApiError(res.status, `${method} ${path}: ${res.status} ${message}`, body);
    if (err.isAuth) reportAuthProblem({ status: res.status, message });
    throw err;
  }
  return body;
}

/** GET /api/status → {version, epoch, head, earliest, uptime…, connections, subscribers, …}. */
export function getStatus() {
  return call('GET', '/api/status', null, { timeoutMs: 5000 });
}

/** Normalises a session summary whatever the server's spelling. */
export function normaliseSession(s) {
  const time = (v) => (typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN);
  return {
    id: s.session_id ?? s.id,
    events: s.event_count ?? s.events ?? 0,
    cost: s.total_cost_tokens ?? s.cost_tokens ?? s.cost ?? 0,
    errors: s.error_count ?? s.errors ?? 0,
    firstOffset: s.first_offset ?? null,
    lastOffset: s.last_offset ?? null,
    firstTime: time(s.first_time ?? s.first_time_ms ?? s.first_timestamp),
    lastTime: time(s.last_time ?? s.last_time_ms ?? s.last_timestamp),
    raw: s,
  };
}

/** GET /api/sessions → {sessions: [normalised…], more: bool}. */
export async function listSessions({ limit = 50, offset = 0, search = '' } = {}) {
  const body = await call('GET', '/api/sessions', { limit, offset, q: search || null });
  const list = Array.isArray(body) ? body : (body?.sessions ?? []);
  const sessions = list.map(normaliseSession);
  return { sessions, more: typeof body?.has_more === 'boolean' ? body.has_more : list.length >= limit };
}

/** GET /api/sessions/{id} → normalised summary. */
export async function getSession(id) {
  return normaliseSession(await call('GET', `/api/sessions/${encodeURIComponent(id)}`));
}

/** DELETE /api/sessions/{id}[?hard=true]. */
export function deleteSession(id, { hard = false } = {}) {
  return call('DELETE', `/api/sessions/${encodeURIComponent(id)}`, hard ? { hard: 'true' } : null);
}

/** GET /api/sessions/{id}/events → {events, nextAfter}. */
export async function sessionEvents(id, { after = 0, limit = 1000 } = {}) {
  const body = await call('GET', `/api/sessions/${encodeURIComponent(id)}/events`, { after, limit });
  return { events: body?.events ?? [], nextAfter: body?.next_after ?? null };
}
