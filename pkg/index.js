// Shelfcast: the <shelfcast-availability> custom element.
//
//   import { define } from "shelfcast";
//   define({ hub: "https://stock.example.com" });
//
// The view itself is Rust/WebAssembly (dist/); this file only registers the element, keeps
// its shadow root and forwards attribute changes.
import init, { ShelfcastElement } from "./dist/shelfcast_element.js";

export const TAG = "shelfcast-availability";
const ATTRIBUTES = ["sku", "location", "locations", "hub", "locale", "low-stock", "reservable"];

let defaultHub = new URL(import.meta.url).origin;
let loading;

function load(wasm) {
  loading ??= init({ module_or_path: wasm ?? new URL("./dist/shelfcast_element_bg.wasm", import.meta.url) });
  return loading;
}

function attributesOf(element) {
  const out = {};
  for (const name of ATTRIBUTES) {
    const value = element.getAttribute(name);
    if (value !== null) out[name] = value;
  }
  return out;
}

function start(host, attributes) {
  const root = host.shadowRoot ?? host.attachShadow({ mode: "open" });
  return new ShelfcastElement(host, root, defaultHub, attributes);
}

export class ShelfcastAvailability extends HTMLElement {
  static get observedAttributes() {
    return ATTRIBUTES;
  }

  connectedCallback() {
    load().then(() => {
      // Removed again before the module loaded, or already running: nothing to do.
      if (!this.isConnected || this._view) return;
      this._view = start(this, attributesOf(this));
    });
  }

  disconnectedCallback() {
    this._view?.free();
    this._view = undefined;
    this.shadowRoot?.replaceChildren();
  }

  attributeChangedCallback(name, _old, value) {
    this._view?.attribute_changed(name, value ?? undefined);
  }
}

/** Registers <shelfcast-availability>. Resolves once the WebAssembly is loaded. */
export function define(options = {}) {
  if (options.hub) defaultHub = options.hub.replace(/\/$/, "");
  if (!customElements.get(TAG)) customElements.define(TAG, ShelfcastAvailability);
  return load(options.wasm);
}

const OPTION_ATTRIBUTES = {
  sku: "sku",
  location: "location",
  locations: "locations",
  hub: "hub",
  locale: "locale",
  lowStock: "low-stock",
  reservable: "reservable",
};

function toAttributes(options) {
  const out = {};
  for (const [key, name] of Object.entries(OPTION_ATTRIBUTES)) {
    const value = options[key];
    if (value === undefined || value === null || value === false) continue;
    out[name] = Array.isArray(value) ? value.join(",") : value === true ? "" : String(value);
  }
  return out;
}

/**
 * Mounts the availability view into any element (no custom element needed).
 * Returns a handle to change options or unmount.
 */
export async function mount(element, options = {}) {
  await load(options.wasm);
  let view = start(element, toAttributes(options));
  let current = toAttributes(options);
  return {
    update(next) {
      const attributes = toAttributes({ ...options, ...next });
      for (const name of new Set([...Object.keys(current), ...Object.keys(attributes)])) {
        if (current[name] !== attributes[name]) view?.attribute_changed(name, attributes[name]);
      }
      current = attributes;
    },
    unmount() {
      view?.free();
      view = undefined;
      element.shadowRoot?.replaceChildren();
    },
  };
}
