// The script-tag entry: <script type="module" src="https://HUB/embed/shelfcast.js"></script>
// registers <shelfcast-availability>, talking to the hub the script came from.
import { define } from "./index.js";

define();
