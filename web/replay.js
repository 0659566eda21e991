// Replay of a recorded session: plays its events from the start using their
// own timestamps at 1×, 10× or full speed; pause, step, step back, jump.
// Pure timing logic (the clock is injectable); the view renders positions.
import { eventTime } from './format.js';

export const SPEEDS = Object.freeze([
  { id: '1', label: '1×', factor: 1 },
  { id: '10', label: '10×', factor: 10 },
  { id: 'max', label: 'Full speed', factor: Infinity },
]);

/** Longest real wait between two events when idle gaps are skipped. */
export const IDLE_GAP_MS = 2000;

const defaultClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t),
  frame: (fn) => (typeof requestAnimationFrame === 'function' ? requestAnimationFrame(fn) : setTimeout(fn, 16)),
  cancelFrame: (t) => (typeof cancelAnimationFrame === 'function' ? cancelAnimationFrame(t) : clearTimeout(t)),
  now: () => (typeof performance !== 'undefined' ? performance.now() : Date.now()),
};

/**
 * Position k means "the first k events have happened" (0 … events.length).
 * onChange({position, playing, speed}) after every change.
 */
export class ReplayController {
  constructor({ events, onChange = () => {}, clock = defaultClock, speed = '1', skipIdle = true } = {}) {
    this.events = events ?? [];
    this.onChange = onChange;
    this.clock = clock;
    this.position = 0;
    this.playing = false;
    this.speed = speed;
    this.skipIdle = skipIdle;
    this._timer = null;
    this._frame = null;
  }

  get length() {
    return this.events.length;
  }
  get factor() {
    return SPEEDS.find((s) => s.id === this.speed)?.factor ?? 1;
  }

  /** Real milliseconds to wait before event index i (i ≥ 1) at the current speed. */
  delayBefore(i) {
    if (i <= 0 || i >= this.events.length) return 0;
    const a = eventTime(this.events[i - 1]);
    const b = eventTime(this.events[i]);
    let gap = Number.isFinite(a) && Number.isFinite(b) ? Math.max(0, b - a) : 0;
    gap /= this.factor;
    if (this.skipIdle) gap = Math.min(gap, IDLE_GAP_MS);
    return gap;
  }

  /** Adds events that arrived after the replay was opened (a live session). */
  extend(events) {
    this.events = events;
    this._emit();
  }

  play() {
    if (this.position >= this.events.length) this.position = 0; // from the start again
    this.playing = true;
    this._emit();
    this._schedule(true);
  }

  pause() {
    this.playing = false;
    this._cancel();
    this._emit();
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  step() {
    this.pause();
    this.seek(this.position + 1);
  }

  stepBack() {
    this.pause();
    this.seek(this.position - 1);
  }

  restart() {
    const playing = this.playing;
    this._cancel();
    this.position = 0;
    this._emit();
    if (playing) this._schedule(true);
  }

  seek(position) {
    this.position = Math.max(0, Math.min(this.events.length, Math.round(position)));
    this._emit();
    if (this.playing) {
      this._cancel();
      this._schedule(false);
    }
  }

  setSpeed(id) {
    this.speed = id;
    if (this.playing) {
      this._cancel();
      this._schedule(false);
    }
    this._emit();
  }

  setSkipIdle(on) {
    this.skipIdle = on;
    if (this.playing) {
      this._cancel();
      this._schedule(false);
    }
  }

  dispose() {
    this._cancel();
    this.onChange = () => {};
  }

  _emit() {
    this.onChange({ position: this.position, playing: this.playing, speed: this.speed });
  }

  _cancel() {
    if (this._timer != null) this.clock.clearTimeout(this._timer);
    if (this._frame != null) this.clock.cancelFrame(this._frame);
    this._timer = this._frame = null;
  }

  _finish() {
    this.playing = false;
    this._cancel();
    this._emit();
  }

  _schedule(first) {
    if (!this.playing) return;
    if (this.position >= this.events.length) return this._finish();
    if (this.factor === Infinity) {
      // Full speed: as many events as fit in ~8 ms per frame.
      this._frame = this.clock.frame(() => {
        this._frame = null;
        if (!this.playing) return;
        const until = this.clock.now() + 8;
        let n = 0;
        do {
          this.position += 1;
          n += 1;
        } while (this.position < this.events.length && n < 500 && this.clock.now() < until);
        this._emit();
        this._schedule(false);
      });
      return;
    }
    // The first event plays at once; each next one after its gap.
    const wait = first && this.position === 0 ? 0 : this.delayBefore(this.position);
    this._timer = this.clock.setTimeout(() => {
      this._timer = null;
      if (!this.playing) return;
      this.position += 1;
      this._emit();
      this._schedule(false);
    }, wait);
  }
}
