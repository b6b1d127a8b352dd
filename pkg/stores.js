// The element's second module, loaded only by elements that use `near`, `skus` or
// `location="auto"` (element.js): the nearest stores, the shopper's own store and a size grid.
//
// Each store of the list and each size of the grid is a plain <shelfcast-availability> inside
// this element's shadow root: its count comes over the page's one stream, like every other
// element's, and its reserve button is the element's own. This module only arranges them,
// listens to their `shelfcast:change` events, and adds what they do not know: the directory
// (distance, pickup times), the remembered store and the grid. It is plain DOM (no HTML
// strings, styles in a constructed sheet), so it runs under the same strict Content Security
// Policy and Trusted Types as the element.

const TAG = "shelfcast-availability";

/** Attributes handed down unchanged to the elements inside. */
const PASSED = ["locale", "low-stock", "reservable", "notify"];

const WORDS = {
  en: {
    useLocation: "Use my location",
    locating: "Finding your location…",
    denied: "Your location is not available. Allow it for this site, or choose a store.",
    nearby: "Stores near you",
    none: "No stores found nearby.",
    failed: "The stores could not be loaded.",
    makeMine: "Make this my store",
    mine: "My store",
    choose: "Choose your store to see whether it has this.",
    chooseSize: "Choose your size.",
    sizes: "Sizes",
    noPickup: "No pickup at this store",
    minutes: (n) => `Ready in ${n} minutes`,
    hours: (n) => (n === 1 ? "Ready in 1 hour" : `Ready in ${n} hours`),
    today: "Ready today",
    tomorrow: "Ready tomorrow",
    days: (n) => `Ready in ${n} days`,
    weeks: "Ready in 2 weeks or more",
    status: { in_stock: "In stock", low_stock: "Low stock", out_of_stock: "Out of stock" },
  },
  de: {
    useLocation: "Meinen Standort verwenden",
    locating: "Standort wird ermittelt…",
    denied: "Ihr Standort ist nicht verfügbar. Erlauben Sie ihn für diese Seite oder wählen Sie eine Filiale.",
    nearby: "Filialen in Ihrer Nähe",
    none: "Keine Filialen in der Nähe gefunden.",
    failed: "Die Filialen konnten nicht geladen werden.",
    makeMine: "Als meine Filiale merken",
    mine: "Meine Filiale",
    choose: "Wählen Sie Ihre Filiale, um zu sehen, ob sie es hat.",
    chooseSize: "Wählen Sie Ihre Größe.",
    sizes: "Größen",
    noPickup: "Keine Abholung in dieser Filiale",
    minutes: (n) => `Abholbereit in ${n} Minuten`,
    hours: (n) => (n === 1 ? "Abholbereit in 1 Stunde" : `Abholbereit in ${n} Stunden`),
    today: "Heute abholbereit",
    tomorrow: "Morgen abholbereit",
    days: (n) => `Abholbereit in ${n} Tagen`,
    weeks: "Abholbereit in 2 Wochen oder mehr",
    status: { in_stock: "Auf Lager", low_stock: "Geringer Bestand", out_of_stock: "Ausverkauft" },
  },
  fr: {
    useLocation: "Utiliser ma position",
    locating: "Recherche de votre position…",
    denied: "Votre position n'est pas disponible. Autorisez-la pour ce site, ou choisissez un magasin.",
    nearby: "Magasins près de chez vous",
    none: "Aucun magasin trouvé à proximité.",
    failed: "Les magasins n'ont pas pu être chargés.",
    makeMine: "Choisir ce magasin",
    mine: "Mon magasin",
    choose: "Choisissez votre magasin pour savoir s'il l'a en stock.",
    chooseSize: "Choisissez votre taille.",
    sizes: "Tailles",
    noPickup: "Pas de retrait dans ce magasin",
    minutes: (n) => `Prêt dans ${n} minutes`,
    hours: (n) => (n === 1 ? "Prêt dans 1 heure" : `Prêt dans ${n} heures`),
    today: "Prêt aujourd'hui",
    tomorrow: "Prêt demain",
    days: (n) => `Prêt dans ${n} jours`,
    weeks: "Prêt dans 2 semaines ou plus",
    status: { in_stock: "En stock", low_stock: "Stock faible", out_of_stock: "Rupture de stock" },
  },
};

const STYLE = `
:host { display: block; font: var(--shelfcast-font, 0.95rem/1.4 system-ui, -apple-system, "Segoe UI", sans-serif); color: var(--shelfcast-fg, #1d1d1f); }
[hidden] { display: none !important; }
ol { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.6rem; }
li { display: grid; gap: 0.2rem; padding-bottom: 0.6rem; border-bottom: 1px solid var(--shelfcast-line, #e5e5ea); }
li:last-child { border-bottom: 0; padding-bottom: 0; }
.head { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0.3rem 0.8rem; }
.name { font-weight: 600; }
.meta, .note { color: #6e6e73; font-size: 0.9em; margin: 0; }
li.out .name { color: #6e6e73; }
/* One "Live" line for the whole list: the last store's. */
li:not(:last-child) ${TAG}::part(link) { display: none; }
button {
  font: inherit; cursor: pointer; border-radius: var(--shelfcast-radius, 8px);
  padding: 0.35rem 0.7rem; border: 1px solid var(--shelfcast-accent, #0b57d0);
  background: transparent; color: var(--shelfcast-accent, #0b57d0);
}
button.mine { justify-self: start; font-size: 0.85em; padding: 0.2rem 0.6rem; }
button.mine[aria-pressed="true"] { border-color: transparent; font-weight: 600; cursor: default; }
button:focus-visible { outline: 3px solid var(--shelfcast-focus, #f4b400); outline-offset: 2px; }
.grid { display: flex; flex-wrap: wrap; gap: 0.4rem; margin-bottom: 0.5rem; }
.cell { min-width: 2.8rem; color: var(--shelfcast-fg, #1d1d1f); border-color: #c7c7cc; position: relative; }
.cell::after { content: ""; position: absolute; right: 0.25rem; top: 0.25rem; width: 0.4rem; height: 0.4rem; border-radius: 50%; background: #8a8a8e; }
.cell.in_stock::after { background: var(--shelfcast-in-stock, #1a7f37); }
.cell.low_stock::after { background: var(--shelfcast-low-stock, #b35900); }
.cell.out_of_stock { color: #6e6e73; text-decoration: line-through; }
.cell.out_of_stock::after { background: var(--shelfcast-out-of-stock, #b42318); }
.cell[aria-pressed="true"] { border: 2px solid var(--shelfcast-accent, #0b57d0); font-weight: 600; }
`;

let sheet;
function styles(root) {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
  }
  root.adoptedStyleSheets = [sheet];
}

function words(attributes) {
  const tag = (attributes.locale?.trim() || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  return [WORDS[tag] ? tag : "en", WORDS[tag] ?? WORDS.en];
}

/**
 * What a store's pickup promises, in words. The store's service level wins where it is longer
 * than a day: a store whose pickups take days never says "Ready in 1 hour".
 */
function readyIn(pickup, w) {
  if (!pickup || pickup.enabled === false) return w.noPickup;
  const days = /^([2-6])-day$/.exec(pickup.sla ?? "");
  if (pickup.sla === "multi-week") return w.weeks;
  if (days) return w.days(Number(days[1]));
  if (pickup.sla === "next_day") return w.tomorrow;
  const m = pickup.ready_in_minutes;
  if (!Number.isFinite(m) || m <= 0) return w.today;
  if (m < 60) return w.minutes(m);
  if (m < 24 * 60) return w.hours(Math.ceil(m / 60));
  return m <= 24 * 60 ? w.tomorrow : w.days(Math.ceil(m / (24 * 60)));
}

function distance(meters, lang) {
  const km = meters >= 1000;
  const value = km ? meters / 1000 : Math.max(10, Math.round(meters / 10) * 10);
  return new Intl.NumberFormat(lang, { style: "unit", unit: km ? "kilometer" : "meter", maximumFractionDigits: km && value < 10 ? 1 : 0 }).format(value);
}

// The shopper's own store, per hub, in this shop's storage (its origin's); `MINE` tells the
// page's other elements at once (other tabs hear of it through the `storage` event).
const MINE = "shelfcast:my-store";
const storeKey = (hub) => `shelfcast:store:${hub}`;

function myStore(hub) {
  try {
    return localStorage.getItem(storeKey(hub)) || undefined;
  } catch {
    return undefined;
  }
}

function remember(hub, location) {
  try {
    localStorage.setItem(storeKey(hub), location);
  } catch {
    // Storage refused (private mode, quota): remembered for this page only.
  }
  remembered.set(hub, location);
  dispatchEvent(new CustomEvent(MINE, { detail: { hub, location } }));
}

const remembered = new Map();
// Where the shopper is, once they let the page know: for every `near="auto"` element of the page,
// and never stored.
let here;

function el(name, props = {}, ...children) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") e.textContent = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children);
  return e;
}

function emit(host, name, detail) {
  host.dispatchEvent(new CustomEvent(`shelfcast:${name}`, { bubbles: true, composed: true, detail }));
}

/**
 * Shows `attributes` in `root` of `host`, talking to `hub`. Returns `stop()`. The element
 * starts again (a new `start`) when any attribute changes.
 */
export function start(host, root, hub, attributes) {
  hub = (attributes.hub?.trim() || hub).replace(/\/+$/, "");
  const [lang, w] = words(attributes);
  // `reservable` false: no reserve button here, whatever the element says (pickup is off).
  const inner = (sku, location, reservable = true) => {
    const e = el(TAG, { sku, location, hub });
    for (const name of PASSED) if (attributes[name] !== undefined) e.setAttribute(name, attributes[name]);
    if (!reservable) e.removeAttribute("reservable");
    return e;
  };
  styles(root);
  const box = el("div", { class: "shelfcast-stores", lang, part: "stores" });
  root.replaceChildren(box);
  const stops = [];
  const on = (target, name, f) => {
    target.addEventListener(name, f);
    stops.push(() => target.removeEventListener(name, f));
  };

  const near = attributes.near?.trim();
  const auto = attributes.location?.trim() === "auto";
  if (near) {
    nearest(box, { host, hub, w, lang, sku: attributes.sku?.trim() ?? "", near, limit: attributes.limit, inner, on });
  } else {
    // One store (maybe the remembered one), with a size grid if asked.
    const show = () => {
      const location = auto ? remembered.get(hub) ?? myStore(hub) : (attributes.location ?? attributes.locations ?? "").split(",")[0].trim();
      if (!location) {
        box.replaceChildren(el("p", { class: "note", role: "status", text: w.choose }));
        return;
      }
      if (attributes.skus?.trim()) grid(box, { attributes, w, location, inner, on });
      else box.replaceChildren(inner(attributes.sku?.trim() ?? "", location));
    };
    show();
    if (auto) {
      on(window, MINE, (e) => e.detail.hub === hub && show());
      on(window, "storage", (e) => e.key === storeKey(hub) && (remembered.delete(hub), show()));
    }
  }
  return () => {
    for (const stop of stops) stop();
    root.replaceChildren();
  };
}

/** The nearest stores, nearest first and out-of-stock ones last, kept in that order live. */
function nearest(box, { host, hub, w, lang, sku, near, limit, inner, on }) {
  const note = el("p", { class: "note", role: "status" });
  const list = el("ol", { "aria-label": w.nearby });
  const locate = el("button", { type: "button", class: "locate", text: w.useLocation });
  box.append(locate, note, list);
  locate.hidden = near !== "auto" || here !== undefined;
  const say = (text) => {
    note.textContent = text;
    note.hidden = !text;
  };
  say("");

  const statuses = new Map();
  let rows = [];
  const order = () => {
    // Nearest first (the hub's order), out of stock last: the shopper sees first where to go.
    const wanted = [...rows].sort((a, b) => (statuses.get(a.dataset.location) === "out_of_stock") - (statuses.get(b.dataset.location) === "out_of_stock") || a.rank - b.rank);
    wanted.forEach((row, i) => {
      row.classList.toggle("out", statuses.get(row.dataset.location) === "out_of_stock");
      if (list.children[i] !== row) {
        // `moveBefore` keeps the store's element (and the shopper's focus) as it is; older
        // browsers re-attach it, which re-mounts it from the page's stream at once.
        if (list.moveBefore) list.moveBefore(row, list.children[i] ?? null);
        else list.insertBefore(row, list.children[i] ?? null);
      }
    });
  };
  on(list, "shelfcast:change", (e) => {
    if (statuses.get(e.detail.location) === e.detail.status) return;
    statuses.set(e.detail.location, e.detail.status);
    order();
  });
  const mark = () => {
    const mine = remembered.get(hub) ?? myStore(hub);
    for (const row of rows) {
      const b = row.querySelector("button.mine");
      const is = row.dataset.location === mine;
      b.setAttribute("aria-pressed", String(is));
      b.textContent = is ? w.mine : w.makeMine;
    }
  };
  on(window, MINE, (e) => e.detail.hub === hub && mark());
  on(list, "click", (e) => {
    const b = e.target.closest?.("button.mine");
    if (!b || b.getAttribute("aria-pressed") === "true") return;
    const location = b.closest("li").dataset.location;
    remember(hub, location);
    emit(host, "store-chosen", { location });
  });

  const load = async (lat, lng) => {
    const n = Math.min(50, Math.max(1, Number.parseInt(limit ?? "5", 10) || 5));
    // The shopper's position goes to the hub rounded to about 100 m: enough to sort stores.
    const url = `${hub}/v1/locations?near=${lat.toFixed(3)},${lng.toFixed(3)}&limit=${n}&sku=${encodeURIComponent(sku)}`;
    let stores;
    try {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`${r.status}`);
      stores = (await r.json()).locations;
    } catch (error) {
      say(w.failed);
      emit(host, "error", { code: "directory_unavailable", message: `${url}: ${error.message ?? error}` });
      return;
    }
    say(stores.length ? "" : w.none);
    statuses.clear();
    rows = stores.map((s, rank) => {
      const meta = [s.distance_m === undefined ? null : distance(s.distance_m, lang), readyIn(s.pickup, w)].filter(Boolean).join(" · ");
      const row = el(
        "li",
        { "data-location": s.id },
        el("div", { class: "head" }, el("span", { class: "name", text: s.name }), el("span", { class: "meta", text: meta })),
        inner(sku, s.id, s.pickup?.enabled !== false),
        el("button", { type: "button", class: "mine", "aria-pressed": "false", text: w.makeMine }),
      );
      row.rank = rank;
      if (s.position?.status) statuses.set(s.id, s.position.status);
      return row;
    });
    list.replaceChildren(...rows);
    mark();
    order();
  };

  if (near !== "auto") {
    const [lat, lng] = near.split(",").map(Number);
    if (!Number.isFinite(lat) || !Number.isFinite(lng)) {
      say(w.failed);
      emit(host, "error", { code: "invalid_near", message: `near="${near}": give "auto" or "LAT,LNG"` });
      return;
    }
    load(lat, lng);
    return;
  }
  if (here) {
    load(here.lat, here.lng);
    return;
  }
  // The browser's location is asked for only when the shopper asks for it.
  on(locate, "click", () => {
    if (!navigator.geolocation) return say(w.denied);
    say(w.locating);
    locate.setAttribute("aria-disabled", "true");
    navigator.geolocation.getCurrentPosition(
      (p) => {
        here = { lat: p.coords.latitude, lng: p.coords.longitude };
        locate.hidden = true;
        say("");
        load(here.lat, here.lng);
      },
      (error) => {
        locate.removeAttribute("aria-disabled");
        say(w.denied);
        emit(host, "error", { code: "location_unavailable", message: error.message || "geolocation failed" });
      },
      { timeout: 15_000, maximumAge: 600_000 },
    );
  });
}

/** Every size of `skus` at one store: a cell each, live; the chosen one's element below. */
function grid(box, { attributes, w, location, inner, on }) {
  const skus = attributes.skus.split(",").map((s) => s.trim()).filter(Boolean);
  const labels = (attributes.labels ?? "").split(",").map((s) => s.trim());
  let chosen = skus.includes(attributes.sku?.trim()) ? attributes.sku.trim() : undefined;
  const cells = el("div", { class: "grid", role: "group", "aria-label": w.sizes });
  const variants = el("div", { class: "variants" });
  const hint = el("p", { class: "note", text: w.chooseSize });
  const label = (sku) => labels[skus.indexOf(sku)] || sku;
  for (const sku of skus) {
    cells.append(el("button", { type: "button", class: "cell", "data-sku": sku, "aria-pressed": String(sku === chosen), text: label(sku) }));
    // Every size watches its position (for its cell); only the chosen one shows.
    const v = inner(sku, location);
    v.hidden = sku !== chosen;
    variants.append(v);
  }
  hint.hidden = chosen !== undefined;
  box.replaceChildren(cells, hint, variants);
  const statuses = new Map();
  const paint = (sku) => {
    const cell = cells.querySelector(`[data-sku="${CSS.escape(sku)}"]`);
    const status = statuses.get(sku);
    cell.className = `cell ${status ?? ""}`;
    cell.setAttribute("aria-label", status ? `${label(sku)}: ${w.status[status]}` : label(sku));
  };
  on(variants, "shelfcast:change", (e) => {
    statuses.set(e.detail.sku, e.detail.status);
    paint(e.detail.sku);
  });
  on(cells, "click", (e) => {
    const cell = e.target.closest?.("button.cell");
    if (!cell) return;
    chosen = cell.dataset.sku;
    for (const c of cells.children) c.setAttribute("aria-pressed", String(c === cell));
    for (const v of variants.children) v.hidden = v.getAttribute("sku") !== chosen;
    hint.hidden = true;
  });
}
