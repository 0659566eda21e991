// The feed's filter controls as data: form values ⇄ server filter (docs/FILTERS.md)
// ⇄ the URL hash's query. Pure; no DOM.
import { ERROR_EVENT_TYPES, ERROR_STATUSES, splitList } from './format.js';

/** "Errors only": error events, or any event whose status is a failure. */
export const ERRORS_ONLY = Object.freeze({
  any: [{ event_types: [...ERROR_EVENT_TYPES] }, { statuses: [...ERROR_STATUSES] }],
});

/** Empty form values. */
export function emptyControls() {
  return { types: [], sessions: [], tools: [], statuses: [], models: [], costAbove: null, errorsOnly: false };
}

/**
 * Form values → filter object. Controls nobody set are left out (an empty list
 * would match nothing, FILTERS.md). `{}` means every event.
 */
export function buildFilter(c) {
  const f = {};
  if (c.types?.length) f.event_types = [...c.types];
  if (c.sessions?.length) f.session_ids = [...c.sessions];
  if (c.tools?.length) f.tool_names = [...c.tools];
  if (c.statuses?.length) f.statuses = [...c.statuses];
  if (c.models?.length) f.models = [...c.models];
  if (c.costAbove != null && Number.isInteger(c.costAbove) && c.costAbove >= 0) {
    f.cost_threshold_tokens = c.costAbove;
  }
  if (c.errorsOnly) f.any = structuredClone(ERRORS_ONLY.any);
  return f;
}

/** True when the controls select everything. */
export function isEmptyControls(c) {
  return Object.keys(buildFilter(c)).length === 0;
}

const PARAMS = [
  ['types', 'types'],
  ['sessions', 'sessions'],
  ['tools', 'tools'],
  ['statuses', 'statuses'],
  ['models', 'models'],
];

/** Controls → URLSearchParams for the hash (#/feed?types=a,b&errors=1). */
export function controlsToParams(c) {
  const p = new URLSearchParams();
  for (const [key, name] of PARAMS) if (c[key]?.length) p.set(name, c[key].join(','));
  if (c.costAbove != null) p.set('cost', String(c.costAbove));
  if (c.errorsOnly) p.set('errors', '1');
  return p;
}

/** URLSearchParams → controls (unknown or malformed values ignored). */
export function paramsToControls(p) {
  const c = emptyControls();
  for (const [key, name] of PARAMS) if (p.has(name)) c[key] = splitList(p.get(name));
  if (p.has('cost')) {
    const n = Number(p.get('cost'));
    if (Number.isInteger(n) && n >= 0) c.costAbove = n;
  }
  c.errorsOnly = p.get('errors') === '1';
  return c;
}

/** A short human description: "tool_call, tool_result · cost > 100 · errors only". */
export function describeControls(c) {
  const parts = [];
  if (c.types?.length) parts.push(`types ${c.types.join(', ')}`);
  if (c.sessions?.length) parts.push(`sessions ${c.sessions.join(', ')}`);
  if (c.tools?.length) parts.push(`tools ${c.tools.join(', ')}`);
  if (c.statuses?.length) parts.push(`statuses ${c.statuses.join(', ')}`);
  if (c.models?.length) parts.push(`models ${c.models.join(', ')}`);
  if (c.costAbove != null) parts.push(`cost > ${c.costAbove} tokens`);
  if (c.errorsOnly) parts.push('errors only');
  return parts.length ? parts.join(' · ') : 'all events';
}
