// The custom element around the WebAssembly view, independent of how the wasm was loaded:
// index.js uses it with the packaged build, the demo page with `trunk serve`'s build.

export const TAG = "shelfcast-availability";
export const ATTRIBUTES = ["sku", "location", "locations", "hub", "locale", "low-stock", "reservable", "notify", "near", "skus", "labels", "limit"];

// The nearest stores, the shopper's own store (`location="auto"`) and the size grid live in a
// second module, downloaded only by a page that uses them (pkg/stores.js). Its address is
// resolved at run time, so bundlers leave it out of the first download.
const STORES = new URL("./stores.js", import.meta.url).href;
let stores;
const loadStores = () => (stores ??= import(/* @vite-ignore */ STORES));

/** Whether attributes (a plain object) ask for the second module. */
function extended(attributes) {
  return Boolean(attributes.near?.trim() || attributes.skus?.trim() || attributes.location?.trim() === "auto");
}


/** `mount()` options as attributes: arrays joined, `true` as a present boolean attribute. */
export function toAttributes(options) {
  const out = {};
  for (const name of ATTRIBUTES) {
    // `low-stock` is `lowStock`; the others are spelled alike.
    const value = options[name.replace(/-s/, "S")];
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
  // A host shows either the wasm view, or the second module's arrangement of inner elements.
  // Returns what `stop()` takes down.
  const start = (host, attributes) => {
    const root = host.shadowRoot ?? host.attachShadow({ mode: "open" });
    if (!extended(attributes)) return new View(host, root, hub(), attributes);
    define();
    let stop;
    let stopped = false;
    loadStores().then(
      (m) => {
        if (!stopped) stop = m.start(host, root, hub(), attributes);
      },
      (error) => !stopped && unavailable(host, error),
    );
    return {
      extended: true,
      free() {
        stopped = true;
        stop?.();
      },
    };
  };

  class ShelfcastAvailability extends HTMLElement {
    static get observedAttributes() {
      return ATTRIBUTES;
    }

    connectedCallback() {
      if (extended(attributesOf(this))) {
        this._view ??= start(this, attributesOf(this));
        return;
      }
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

    // Moved within the page (`moveBefore`): the view stays as it is.
    connectedMoveCallback() {}

    attributeChangedCallback(name, _old, value) {
      if (!this._view) return;
      // The second module's arrangements start again on any change, as does a host that
      // moves between the two kinds.
      if (this._view.extended || extended(attributesOf(this))) {
        this.disconnectedCallback();
        this.connectedCallback();
        return;
      }
      this._view.attribute_changed(name, value ?? undefined);
    }
  }

  async function mount(element, options = {}) {
    try {
      if (!extended(toAttributes(options))) await ready(options.wasm);
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
        if (view?.extended || extended(attributes)) {
          // The second module's arrangements start again on any change (see the element).
          view?.free();
          element.shadowRoot?.replaceChildren();
          const mine = (view = { extended: true, free() {} });
          Promise.resolve(extended(attributes) || ready(options.wasm)).then(() => {
            if (view === mine) view = start(element, attributes);
          }, (error) => unavailable(element, error));
          current = attributes;
          return;
        }
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
