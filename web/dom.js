// DOM helpers: build elements without innerHTML (event data is never parsed as HTML).

/**
 * h('a', {href: '#/x', class: 'link', onclick: fn}, 'text', child)
 * Props: class, text, dataset {…}, on<event> functions, value/checked/disabled
 * (set as properties), anything else as an attribute (true → empty, null/false → omitted).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') {
        for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = String(dv);
      } else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Removes every child. */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
}

/** Calls fn at most once per animation frame (also when the tab is hidden, via a timer). */
export function frameScheduler(fn) {
  let scheduled = false;
  const run = () => {
    if (!scheduled) return;
    scheduled = false;
    fn();
  };
  return () => {
    if (scheduled) return;
    scheduled = true;
    if (typeof requestAnimationFrame === 'function' && !document.hidden) requestAnimationFrame(run);
    else setTimeout(run, 100);
  };
}

/** A debounced function (trailing call). */
export function debounce(fn, ms) {
  let t = null;
  const d = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

let idCounter = 0;
/** A page-unique element id with a readable prefix. */
export function uid(prefix = 'id') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}
