import { define, mount } from "shelfcast";

const hub = new URLSearchParams(location.search).get("hub");
await define({ hub });
window.mounted = await mount(document.getElementById("mounted"), { sku: "E2E-1", locations: ["berlin", "hamburg"], hub, locale: "fr" });
