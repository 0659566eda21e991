// Type declarations of tailbus.js, the JavaScript client of tailbus.
// See docs/CLIENT.md for usage and docs/PROTOCOL.md for the wire protocol.

/** A filter evaluated by the server (docs/FILTERS.md). All keys combine with AND. */
export interface Filter {
  event_types?: string[];
  session_ids?: string[];
  session_id?: string;
  agent_ids?: string[];
  tool_names?: string[];
  statuses?: string[];
  models?: string[];
  feature_ids?: string[];
  /** Events whose cost_tokens is present and greater than this. */
  cost_threshold_tokens?: number;
  /** Events whose duration_ms is present and at least this. */
  min_duration_ms?: number;
  /** At least one of these sub-filters matches (at most 32, nested at most 4 deep). */
  any?: Filter[];
}

/** An event as committed by the server. Producers may add any other member. */
export interface TailbusEvent {
  /** Global position in the log: starts at 1, increases by one per event. */
  offset: number;
  /** When the server accepted it (RFC 3339). */
  ingested_at: string;
  session_id: string;
  event_type: string;
  event_id: string;
  /** The producer's time, normalised to RFC 3339 UTC with milliseconds. */
  timestamp: string;
  agent_id?: string | null;
  tool_name?: string | null;
  status?: string | null;
  model?: string | null;
  feature_id?: string | null;
  parent_event_id?: string | null;
  cost_tokens?: number;
  duration_ms?: number;
  [member: string]: unknown;
}

/** What a producer sends: session_id and event_type (or `type`) are required. */
export interface NewEvent {
  session_id: string;
  event_type?: string;
  type?: string;
  event_id?: string;
  timestamp?: string | number;
  [member: string]: unknown;
}

export interface HelloFrame {
  type: 'hello';
  epoch: string;
  head: number;
  earliest: number;
  session_id: string | null;
  filter: Filter;
  batch_size: number;
  batch_window_ms: number;
  server: string;
  [member: string]: unknown;
}

export interface CaughtUpFrame {
  type: 'caught_up';
  offset: number;
}

export interface ResetFrame {
  type: 'reset';
  reason: 'epoch_mismatch' | 'offset_evicted' | string;
  epoch: string;
  earliest: number;
}

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface StatusChange {
  state: ConnectionState;
  /** Failed attempts since the last stable connection (reconnecting: this attempt's number, from 1). */
  attempt?: number;
  /** reconnecting: how long until the next attempt, ms. */
  delayMs?: number;
  /** reconnecting: when the next attempt starts (Date.now() based). */
  retryAt?: number;
  /** The close code that ended the previous connection. */
  code?: number;
  reason?: string;
  /** connected: the server's epoch and head offset. */
  epoch?: string;
  head?: number;
}

export declare class TailbusError extends Error {
  /** The server's error code (e.g. "bad_filter", "invalid_event"), when it sent one. */
  code?: string;
  /** The request this error answers (publish, message, subscribe). */
  requestId?: string;
  /** The WebSocket close code, for connection errors. */
  closeCode?: number;
  /** The server's error frame, when there was one. */
  frame?: { type: 'error'; code: string; error: string; request_id?: unknown; details?: unknown[] };
}

export interface ReconnectPolicy {
  /** Ceiling of the first retry's random delay, ms (default 1000). */
  initialDelayMs?: number;
  /** Smallest delay, ms (default 100). */
  minDelayMs?: number;
  /** Cap of every delay, ms (default 30000). */
  maxDelayMs?: number;
  /** Ceiling growth per failed attempt (default 2). */
  multiplier?: number;
  /** A connection open this long resets the backoff, ms (default 10000). */
  stableMs?: number;
}

export interface ConnectOptions {
  /**
   * Server base URL ("ws://host:8080", "http://host:8080", "/") or a full
   * endpoint ("ws://host:8080/ws"). Default: the page's origin.
   */
  url?: string;
  /** Only this session (uses /ws/events/{id}; nothing can widen it). */
  sessionId?: string;
  /** Server-side filter. */
  filter?: Filter;
  /**
   * The last offset you have. Absent: live only, from the current head.
   * 0: everything retained, then live.
   */
  after?: number;
  /** The epoch `after` belongs to (from a previous connection's `epoch`). */
  epoch?: string;
  /** Most events per frame (server default 50, max 1000); 1 = single-event frames. */
  batchSize?: number;
  /** How long the server may wait to fill a batch, ms (default 0). */
  batchWindowMs?: number;
  /** Close with 4409 instead of resetting when the position cannot be served. */
  strict?: boolean;
  /** Access token, sent as ?token= . */
  token?: string;
  /** A WebSocket constructor (required in Node < 22: `import { WebSocket } from 'ws'`). */
  WebSocket?: unknown;
  /** Reconnect policy, or false to never reconnect. */
  reconnect?: ReconnectPolicy | false;
  /** Application-level ping interval, ms (default 25000; 0 disables). */
  pingIntervalMs?: number;
  /** How long publish() waits for its ack, ms (default 30000; 0: forever). */
  publishTimeoutMs?: number;
  /** Random source in [0, 1) for the backoff jitter (tests). */
  random?: () => number;
}

export interface SubscribeOptions {
  /** Rewind (or skip) to this position; default: the last delivered offset. */
  after?: number | null;
  batchSize?: number;
  batchWindowMs?: number;
}

export interface TailbusEvents {
  /** One event, in offset order; an offset is never delivered twice. */
  event: TailbusEvent;
  /** The events of one frame (after de-duplication), in offset order. */
  batch: TailbusEvent[];
  status: StatusChange;
  hello: HelloFrame;
  caught_up: CaughtUpFrame;
  /** The requested position could not be served; delivery continues from `earliest`. */
  reset: ResetFrame;
  error: TailbusError;
  pong: { type: 'pong' };
}

export interface TailbusConnection {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof TailbusEvents>(type: K, listener: (value: TailbusEvents[K]) => void): () => void;
  off<K extends keyof TailbusEvents>(type: K, listener: (value: TailbusEvents[K]) => void): void;
  /** Appends one event; resolves with its offset once committed. */
  publish(event: NewEvent): Promise<number>;
  /** Appends events atomically; resolves with their offsets once committed. */
  publish(events: NewEvent[]): Promise<number[]>;
  /** A chat message (stored as event type `message`) in `sessionId` or the connection's session. */
  sendMessage(content: string, sessionId?: string): Promise<number>;
  /** Replaces the server-side filter; resolves with the server's new hello. */
  subscribe(filter: Filter | null, options?: SubscribeOptions): Promise<HelloFrame>;
  /** Application-level ping; resolves on the pong. */
  ping(): Promise<void>;
  /** Closes for good (no reconnect); pending publishes are rejected. */
  close(code?: number, reason?: string): void;
  /** The last delivered offset (the resume position), or null before the first hello of a live-only connection. */
  readonly lastOffset: number | null;
  /** The epoch lastOffset belongs to. */
  readonly epoch: string | null;
  /** The highest offset known to be committed. */
  readonly head: number | null;
  readonly state: ConnectionState;
  readonly filter: Filter | null;
  readonly hello: HelloFrame | null;
  /** The URL the next connection attempt uses. */
  readonly url: string;
}

export declare const DEFAULT_RECONNECT: Readonly<Required<ReconnectPolicy>>;
/** Close codes after which the client does not reconnect. */
export declare const FATAL_CLOSE_CODES: ReadonlySet<number>;

/** Opens a subscription that reconnects and resumes on its own. */
export declare function connect(options?: ConnectOptions): TailbusConnection;
/** The reconnect delay of attempt `attempt` (1-based): full jitter under an exponential ceiling. */
export declare function backoffDelay(attempt: number, policy?: ReconnectPolicy, random?: () => number): number;
/** The WebSocket URL for these options. */
export declare function buildUrl(options: ConnectOptions & { after?: number | null; epoch?: string | null }): string;
