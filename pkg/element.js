// The custom element around the WebAssembly view, independent of how the wasm was loaded:
// index.js uses it with the packaged build, the demo page with `trunk serve`'s build.

export const TAG = "shelfcast-availability";
export const ATTRIBUTES = ["sku", "location", "locations", "hub", "locale", "low-stock", "reservable", "notify"];

const OPTION_ATTRIBUTES = {
  sku: "sku",
  location: "location",
  locations: "locations",
  hub: "hub",
  locale: "locale",
  lowStock: "low-stock",
  reservable: "reservable",
  notify: "notify",
};

/** `mount()` options as attributes: arrays joined, `true` as a present boolean attribute. */
export function toAttributes(options) {
  const out = {};
  for (const [key, name] of Object.entries(OPTION_ATTRIBUTES)) {
    const value = options[key];
    if (value === undefined || value === null || value === false) continue;
    out[name] = Array.isArray(value) ? value.join(",") : value === true ? "" : String(value);
  }
  return out;
}

const UNAVAILABLE = { en: "Stock information is unavailable", de: "Bestandsinformationen sind nicht verfügbar", fr: "Informations de stock indisponibles" };
let reported = false;

/**
 * The WebAssembly did not load: the element says so quietly, a `shelfcast:error` tells the
 * page why (`csp` when the page's Content Security Policy blocked it), and the console says
 * once what to change.
 */
export function unavailable(host, error) {
  const csp = /Content Security Policy|unsafe-eval/i.test(String(error?.message ?? error));
  const message = csp
    ? "Shelfcast: this page's Content-Security-Policy blocks the element's WebAssembly: add 'wasm-unsafe-eval' to script-src."
    : `Shelfcast: the element could not load (${error?.message ?? error}).`;
  if (!reported) console.error(message);
  reported = true;
  const lang = (host.getAttribute("locale") || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  const text = document.createElement("p");
  text.setAttribute("role", "status");
  text.textContent = UNAVAILABLE[lang] ?? UNAVAILABLE.en;
  (host.shadowRoot ?? host.attachShadow({ mode: "open" })).replaceChildren(text);
  const detail = { code: csp ? "csp" : "load_failed", message };
  host.dispatchEvent(new CustomEvent("shelfcast:error", { bubbles: true, composed: true, detail }));
}

function attributesOf(element) {
  const out = {};
  for (const name of ATTRIBUTES) {
    const value = element.getAttribute(name);
    if (value !== null) out[name] = value;
  }
  return out;
}

/**
 * Ties views to hosts. `View` is the wasm's `ShelfcastElement`, `ready()` resolves once the wasm
 * is loaded, `hub()` is the default hub.
 */
export function binding(View, ready, hub) {
  const start = (host, attributes) => {
    const root = host.shadowRoot ?? host.attachShadow({ mode: "open" });
    return new View(host, root, hub(), attributes);
  };

  class ShelfcastAvailability extends HTMLElement {
    static get observedAttributes() {
      return ATTRIBUTES;
    }

    connectedCallback() {
      ready().then(
        () => {
          // Removed again before the wasm loaded, or already running: nothing to do.
          if (!this.isConnected || this._view) return;
          this._view = start(this, attributesOf(this));
        },
        (error) => this.isConnected && unavailable(this, error),
      );
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

  async function mount(element, options = {}) {
    try {
      await ready(options.wasm);
    } catch (error) {
      unavailable(element, error);
      throw error;
    }
    let view = start(element, toAttributes(options));
    let current = toAttributes(options);
    return {
      /** Changes some options; the others stay as they are now (an `undefined` removes one). */
      update(next) {
        options = { ...options, ...next };
        const attributes = toAttributes(options);
        // New and changed values first, removals last: `{location: "x", locations: undefined}`
        // never passes through a state with no location at all.
        for (const [name, value] of Object.entries(attributes)) if (current[name] !== value) view?.attribute_changed(name, value);
        for (const name in current) if (!(name in attributes)) view?.attribute_changed(name, undefined);
        current = attributes;
      },
      unmount() {
        view?.free();
        view = undefined;
        element.shadowRoot?.replaceChildren();
      },
    };
  }

  function define() {
    if (!customElements.get(TAG)) customElements.define(TAG, ShelfcastAvailability);
  }

  return { ShelfcastAvailability, mount, define };
}
