// The console's entry: loads the WebAssembly beside this script and starts the app.
import init from "./dist/glue/shelfcast_console.js";

init({ module_or_path: new URL("console_bg.wasm", import.meta.url) });
