// The script-tag entry: <script type="module" src="https://HUB/embed/shelfcast.js"></script>
// registers <shelfcast-availability>, talking to the hub the script came from.
//
// Everything the element needs is requested at once, from here: the WebAssembly download and
// the modules start together instead of one after another along the import chain. (No
// top-level await, so bundlers with older targets take this file too.)
const wasm = fetch(new URL("./dist/shelfcast_element_bg.wasm", import.meta.url));
// A failure of these two surfaces through index.js, which imports them too.
import("./element.js").catch(() => {});
import("./dist/shelfcast_element.js").catch(() => {});
import("./index.js").then(({ define }) => define({ wasm }));
