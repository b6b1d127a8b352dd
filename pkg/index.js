// Shelfcast: the <shelfcast-availability> custom element.
//
//   import { define } from "shelfcast";
//   define({ hub: "https://stock.example.com" });
//
// The view itself is Rust/WebAssembly (dist/); element.js registers the element, keeps its
// shadow root and forwards attribute changes.
import init, { ShelfcastElement, preconnected } from "./dist/shelfcast_element.js";
import { binding, TAG } from "./element.js";

export { TAG };

// Served by a hub, this file is at <hub>/embed/: that base, a path prefix included, is the
// default hub. Bundled into a shop's own scripts (npm), the default is the page's origin; give
// `hub` to `define()` or `mount()` then.
let defaultHub = new URL(import.meta.url.includes("/embed/") ? ".." : "/", import.meta.url).href.replace(/\/$/, "");
let loading;

function load(wasm) {
  loading ??= init({ module_or_path: wasm ?? new URL("./dist/shelfcast_element_bg.wasm", import.meta.url) });
  return loading;
}

const bound = binding(ShelfcastElement, load, () => defaultHub);

export const ShelfcastAvailability = bound.ShelfcastAvailability;

/** Registers <shelfcast-availability>. Resolves once the WebAssembly is loaded. */
export function define(options = {}) {
  if (options.hub) defaultHub = options.hub.replace(/\/$/, "");
  // Streams the script-tag entry opened ahead (embed.js), for the view to take over.
  const streams = options.streams ?? [];
  // Load first: defining upgrades the page's elements, which wait for this very load. The
  // streams are handed over before any of them mounts (this reaction is registered first).
  const loaded = load(options.wasm).then(
    (exports) => {
      for (const s of streams) preconnected(s.url, s.es, s.buffered, s.buffer);
      return exports;
    },
    (error) => {
      for (const s of streams) s.es.close();
      throw error;
    },
  );
  bound.define();
  return loaded;
}

/**
 * Mounts the availability view into any element (no custom element needed).
 * Returns a handle to change options or unmount.
 */
export const mount = bound.mount;
