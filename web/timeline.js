// A session's events as a timeline of items (pure; no DOM):
// - user messages (`message`) and assistant replies (`assistant`); streaming
//   deltas (`streaming: true`, `content` = the delta) are assembled into one
//   bubble, closed by the final `assistant` event (streaming false/absent);
// - tool calls paired with their results by `tool_call_id` (also §2's
//   tool_started → tool_progress → tool_completed/tool_failed), with the
//   duration between them;
// - LLM calls (openai_call → openai_response, llm_call → llm_response) with
//   model and token counts;
// - errors, and everything else as a plain item;
// - a running total of cost tokens.
import { eventTime, isErrorEvent } from './format.js';

const USER_TYPES = new Set(['message', 'user_message', 'user']);
const ASSISTANT_TYPES = new Set(['assistant', 'assistant_message']);
const DELTA_TYPES = new Set(['token']); // background §3: one delta per event
const STREAM_END_TYPES = new Set(['done']);
const TOOL_CALL_TYPES = new Set(['tool_call', 'tool_started']);
const TOOL_PROGRESS_TYPES = new Set(['tool_progress']);
const TOOL_RESULT_TYPES = new Set(['tool_result', 'tool_completed', 'tool_failed']);
const LLM_CALL_TYPES = new Set(['openai_call', 'llm_call']);
const LLM_RESPONSE_TYPES = new Set(['openai_response', 'llm_response']);

function textOf(e) {
  const v = e.content ?? e.delta ?? e.token ?? e.text ?? e.message;
  if (v == null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * @typedef {object} TimelineItem
 * @property {number} id       offset of the item's first event
 * @property {'user'|'assistant'|'tool'|'llm'|'error'|'event'} kind
 * @property {object[]} events  the events it is made of, in offset order
 * @property {number} start     ms timestamp of its first event
 * @property {number} cost      cost tokens of its events
 * @property {number} costTotal running session total after its last event
 * @property {boolean} error
 */

export class Timeline {
  constructor() {
    /** @type {TimelineItem[]} */
    this.items = [];
    this.costTotal = 0;
    this.errorCount = 0;
    this.eventCount = 0;
    this.firstTime = NaN;
    this.lastTime = NaN;
    this.lastOffset = 0;
    this._toolCalls = new Map(); // key → open tool item
    this._llmOpen = []; // LLM call items waiting for their response
    this._stream = null; // open assistant bubble
  }

  /**
   * Adds one event (offsets must increase; others are ignored).
   * @returns {{added: TimelineItem[], updated: TimelineItem[]}}
   */
  add(e) {
    const changes = { added: [], updated: [] };
    if (typeof e.offset === 'number') {
      if (e.offset <= this.lastOffset) return changes;
      this.lastOffset = e.offset;
    }
    this.eventCount += 1;
    const t = eventTime(e);
    if (Number.isFinite(t)) {
      if (!Number.isFinite(this.firstTime) || t < this.firstTime) this.firstTime = t;
      if (!Number.isFinite(this.lastTime) || t > this.lastTime) this.lastTime = t;
    }
    const cost = typeof e.cost_tokens === 'number' ? e.cost_tokens : 0;
    this.costTotal += cost;
    const err = isErrorEvent(e) || (typeof e.error === 'string' && e.error !== '' && e.event_type !== 'message');
    if (err) this.errorCount += 1;

    const item = this._place(e, t, err, changes);
    item.cost += cost;
    item.costTotal = this.costTotal;
    if (err) item.error = true;
    return changes;
  }

  addAll(events) {
    for (const e of events) this.add(e);
    return this;
  }

  _new(kind, e, t, changes, extra = {}) {
    const item = {
      id: e.offset ?? this.items.length + 1,
      kind,
      events: [e],
      start: t,
      end: t,
      cost: 0,
      costTotal: this.costTotal,
      error: false,
      ...extra,
    };
    this.items.push(item);
    changes.added.push(item);
    return item;
  }

  _join(item, e, t, changes) {
    item.events.push(e);
    if (Number.isFinite(t)) item.end = t;
    if (!changes.added.includes(item) && !changes.updated.includes(item)) changes.updated.push(item);
    return item;
  }

  _place(e, t, err, changes) {
    const type = e.event_type ?? e.type;

    if (USER_TYPES.has(type)) {
      this._closeStream();
      return this._new('user', e, t, changes, { text: textOf(e) });
    }

    if (ASSISTANT_TYPES.has(type) || DELTA_TYPES.has(type)) {
      const delta = e.streaming === true || DELTA_TYPES.has(type);
      const key = e.message_id ?? e.response_id ?? null;
      const open = this._stream && (key == null || this._stream.streamKey == null || this._stream.streamKey === key) ? this._stream : null;
      if (delta) {
        if (open) {
          open.text += textOf(e);
          return this._join(open, e, t, changes);
        }
        const item = this._new('assistant', e, t, changes, { text: textOf(e), streaming: true, streamKey: key, deltas: 1 });
        this._stream = item;
        return item;
      }
      // A final assistant event: closes the open bubble, or stands alone.
      if (open) {
        const full = textOf(e);
        // The final event may repeat the whole reply or carry the last piece.
        if (full && full.startsWith(open.text)) open.text = full;
        else if (full && !open.text.endsWith(full)) open.text += full;
        open.streaming = false;
        this._stream = null;
        return this._join(open, e, t, changes);
      }
      return this._new('assistant', e, t, changes, { text: textOf(e), streaming: false });
    }

    if (STREAM_END_TYPES.has(type) && this._stream) {
      const open = this._stream;
      open.streaming = false;
      this._stream = null;
      return this._join(open, e, t, changes);
    }

    if (TOOL_CALL_TYPES.has(type)) {
      const key = e.tool_call_id ?? (type === 'tool_started' && e.tool_name ? `started:${e.tool_name}` : null);
      const item = this._new('tool', e, t, changes, {
        toolName: e.tool_name ?? '',
        callId: e.tool_call_id ?? null,
        args: e.arguments ?? e.input ?? e.input_summary,
        result: undefined,
        status: 'running',
        durationMs: null,
        paired: false,
        progress: null,
      });
      if (key != null) this._toolCalls.set(key, item);
      return item;
    }

    if (TOOL_PROGRESS_TYPES.has(type)) {
      const key = e.tool_call_id ?? (e.tool_name ? `started:${e.tool_name}` : null);
      const open = key != null ? this._toolCalls.get(key) : null;
      if (open) {
        open.progress = typeof e.progress === 'number' ? e.progress : open.progress;
        return this._join(open, e, t, changes);
      }
      return this._new('event', e, t, changes);
    }

    if (TOOL_RESULT_TYPES.has(type)) {
      const key = e.tool_call_id ?? (e.tool_name ? `started:${e.tool_name}` : null);
      const open = key != null ? this._toolCalls.get(key) : null;
      const result = e.result ?? e.output ?? e.output_summary ?? e.error;
      const status = e.status ?? (err || type === 'tool_failed' ? 'error' : 'ok');
      if (open) {
        this._toolCalls.delete(key);
        open.result = result;
        open.status = status;
        open.paired = true;
        open.measuredMs = Number.isFinite(t) && Number.isFinite(open.start) ? Math.max(0, t - open.start) : null;
        open.durationMs = typeof e.duration_ms === 'number' ? e.duration_ms : open.measuredMs;
        if (!open.toolName && e.tool_name) open.toolName = e.tool_name;
        return this._join(open, e, t, changes);
      }
      return this._new('tool', e, t, changes, {
        toolName: e.tool_name ?? '',
        callId: e.tool_call_id ?? null,
        args: undefined,
        result,
        status,
        durationMs: typeof e.duration_ms === 'number' ? e.duration_ms : null,
        paired: false,
        orphanResult: true,
      });
    }

    if (LLM_CALL_TYPES.has(type)) {
      const item = this._new('llm', e, t, changes, {
        model: e.model ?? '',
        requestKey: e.request_id ?? e.call_id ?? null,
        tokens: null,
        durationMs: null,
        pending: true,
      });
      this._llmOpen.push(item);
      return item;
    }

    if (LLM_RESPONSE_TYPES.has(type)) {
      const key = e.request_id ?? e.call_id ?? null;
      let idx = key != null ? this._llmOpen.findIndex((i) => i.requestKey === key) : -1;
      if (idx < 0 && e.model) idx = this._llmOpen.findIndex((i) => i.model === e.model);
      if (idx < 0 && key == null && this._llmOpen.length) idx = 0;
      const tokens = {
        prompt: e.prompt_tokens ?? null,
        completion: e.completion_tokens ?? null,
        total: e.total_tokens ?? e.cost_tokens ?? null,
      };
      if (idx >= 0) {
        const open = this._llmOpen.splice(idx, 1)[0];
        open.pending = false;
        open.tokens = tokens;
        if (!open.model && e.model) open.model = e.model;
        const measured = Number.isFinite(t) && Number.isFinite(open.start) ? Math.max(0, t - open.start) : null;
        open.durationMs = typeof e.duration_ms === 'number' ? e.duration_ms : measured;
        return this._join(open, e, t, changes);
      }
      return this._new('llm', e, t, changes, {
        model: e.model ?? '',
        tokens,
        durationMs: typeof e.duration_ms === 'number' ? e.duration_ms : null,
        pending: false,
      });
    }

    if (err) return this._new('error', e, t, changes, { message: e.error ?? e.message ?? e.status ?? type });
    return this._new('event', e, t, changes);
  }

  _closeStream() {
    // A new user turn ends whatever reply was streaming (its final event was lost).
    this._stream = null;
  }
}
