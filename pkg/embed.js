// The script-tag entry: <script type="module" src="https://HUB/embed/shelfcast.js"></script>
// registers <shelfcast-availability>, talking to the hub the script came from (its base URL,
// path prefix included).
//
// Everything the element needs is requested at once, from here: the WebAssembly download, the
// modules and the page's streams start together instead of one after another along the import
// chain. The hub serves this file with the modules bundled in (scripts/build-element.sh), so
// a page downloads this one script and the wasm. (No static imports, so unbundled this runs
// the moment it arrives; no top-level await, so bundlers with older targets take it too.)
const wasm = fetch(new URL("./dist/shelfcast_element_bg.wasm", import.meta.url));
// The hub is where this script is served from, under /embed/: a path prefix is kept
// (https://shop.example/stock/embed/shelfcast.js talks to https://shop.example/stock).
const hub = new URL("..", import.meta.url).href.replace(/\/$/, "");
const streams = preconnect(hub);
// A failure of these two surfaces through index.js, which imports them too.
import("./element.js").catch(() => {});
import("./dist/shelfcast_element.js").catch(() => {});
// A failure to load is shown by each element and told by a `shelfcast:error` (element.js).
import("./index.js").then(({ define }) => define({ hub, wasm, streams }).catch(() => {}));

/**
 * Opens the page's streams at once, while the WebAssembly and the modules are still downloading:
 * for the elements already in the document, exactly the requests the view makes once it runs
 * (per hub, the union of the positions, sorted, at most 50 to a stream). Each stream buffers
 * its `position` events until the view adopts it (the view takes a stream whose address it
 * would have requested itself, replays the buffer and closes the rest). Only a head start: the view works the same without.
 * A stream nobody adopted within 10 s (the wasm failed, the elements went) is closed; adoption
 * is visible as the `onopen` handler the view sets.
 */
function preconnect(defaultHub) {
  const ID = /^[A-Za-z0-9._-]{1,64}$/;
  const MAX_PER_STREAM = 50;
  const byHub = new Map();
  for (const element of document.querySelectorAll("shelfcast-availability")) {
    const attr = (name) => element.getAttribute(name)?.trim() || undefined;
    // The nearest stores, the shopper's own store and size grids are the second module's: it
    // knows their positions only once it runs.
    if (attr("near") || attr("skus") || attr("location") === "auto") continue;
    const sku = attr("sku") ?? "";
    const locations = (attr("locations") ?? attr("location") ?? "").split(",").map((l) => l.trim()).filter(Boolean);
    // What the view would refuse to show, it would not request either.
    if (!ID.test(sku) || locations.length === 0 || locations.length > MAX_PER_STREAM) continue;
    if (!locations.every((l) => ID.test(l))) continue;
    const hub = (attr("hub") ?? defaultHub).replace(/\/+$/, "");
    const keys = byHub.get(hub) ?? new Map();
    for (const location of locations) keys.set(`${sku}@${location}`, [sku, location]);
    byHub.set(hub, keys);
  }
  const streams = [];
  for (const [hub, keys] of byHub) {
    const sorted = [...keys.values()].sort(([s1, l1], [s2, l2]) => (s1 < s2 ? -1 : s1 > s2 ? 1 : l1 < l2 ? -1 : l1 > l2 ? 1 : 0));
    for (let i = 0; i < sorted.length; i += MAX_PER_STREAM) {
      const list = sorted.slice(i, i + MAX_PER_STREAM).map(([sku, location]) => `${sku}@${location}`);
      const url = `${hub}/v1/stream?positions=${encodeURIComponent(list.join(","))}`;
      try {
        const es = new EventSource(url);
        const buffered = [];
        const buffer = (e) => buffered.push(e.data);
        es.addEventListener("position", buffer);
        setTimeout(() => {
          if (es.onopen === null) es.close();
        }, 10_000);
        streams.push({ url, es, buffered, buffer });
      } catch {
        // An address the browser refuses: the view will say the hub is unreachable.
      }
    }
  }
  return streams;
}
