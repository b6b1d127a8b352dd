/** Options shared by `define` and `mount`. */
export interface LoadOptions {
  /**
   * Where the WebAssembly lives, if not beside this module (e.g. a bundler's asset URL), or a
   * download already under way (`fetch(url)`).
   */
  wasm?: string | URL | Request | Response | Promise<Response> | BufferSource | WebAssembly.Module;
}

export interface DefineOptions extends LoadOptions {
  /** The hub every element talks to unless its `hub` attribute says otherwise. */
  hub?: string;
}

export interface MountOptions extends LoadOptions {
  /** The product; with `near`, the one whose nearest stores are shown. */
  sku?: string;
  /** One store, or `"auto"`: the store the shopper made theirs ("Make this my store"). */
  location?: string;
  /** A store list, shown as one row each over a single stream. */
  locations?: string | string[];
  hub?: string;
  /** `en`, `de` or `fr`; defaults to the page's `lang`. */
  locale?: string;
  /** Show "Only n left" at or below this many (default 3). */
  lowStock?: number;
  /** Offer "Reserve for pickup". */
  reservable?: boolean;
  /** Offer "Notify me" while out of stock: fires `shelfcast:notify-request`. */
  notify?: boolean;
  /**
   * The stores nearest the shopper: `"auto"` (the browser's location, asked for when the
   * shopper clicks "Use my location") or `"LAT,LNG"`. Loads the second module (stores.js).
   */
  near?: string;
  /** How many stores `near` lists (1-50, default 5). */
  limit?: number;
  /** A size grid at `location`: one live cell per SKU. Loads the second module (stores.js). */
  skus?: string | string[];
  /** The grid's cell labels, in the order of `skus` (e.g. `["40", "41", "42"]`). */
  labels?: string | string[];
}

/** `detail` of `shelfcast:store-chosen`: the shopper made this store theirs. */
export interface StoreChosenDetail {
  location: string;
}

export interface MountHandle {
  /** Merges `options` into the current ones; a key set to `undefined` removes that option. */
  update(options: Partial<MountOptions>): void;
  /** Required when the container goes: frees the view and its share of the page's stream. */
  unmount(): void;
}

/**
 * A stock position (`detail` of `shelfcast:change`): the hub's fields, with `available` and
 * `status` as the element shows them (its `low-stock`, less the shopper's own hold the hub's
 * count does not include yet). The counts are `null` where the hub withholds them
 * (`--disclose low|status`); `status` is then the hub's.
 */
export interface Position {
  sku: string;
  location: string;
  on_hand: number | null;
  reserved: number | null;
  available: number | null;
  status: "in_stock" | "low_stock" | "out_of_stock";
  version: number;
}

export interface ReservationDetail {
  id: string;
  sku: string;
  location: string;
  qty: number;
  /** Milliseconds since the epoch, on `shelfcast:reserved`. */
  expires_at?: number;
  /**
   * On `shelfcast:released`: `cancelled` (the shopper's Cancel here), `expired`, `released`
   * (ended elsewhere: the API, another page, the store) or `fulfilled` (picked up).
   */
  reason?: "cancelled" | "expired" | "released" | "fulfilled";
}

/** `detail` of `shelfcast:notify-request`: the shopper asked to hear when this is back. */
export interface NotifyRequestDetail {
  sku: string;
  location: string;
}

export interface ErrorDetail {
  /**
   * `invalid_sku`, `invalid_location`, `missing_location`, `too_many_locations`, `unreachable`,
   * `insufficient_stock`, `reservation_failed`, `release_failed`, `unexpected_answer`, `csp`,
   * `load_failed`, `location_unavailable`, `directory_unavailable`, `invalid_near`, or the hub's own code for a refused reservation (docs/element.md).
   */
  code: string;
  message: string;
}

export declare const TAG: "shelfcast-availability";
export declare class ShelfcastAvailability extends HTMLElement {}
export declare function define(options?: DefineOptions): Promise<unknown>;
export declare function mount(element: HTMLElement, options: MountOptions): Promise<MountHandle>;

declare global {
  interface HTMLElementTagNameMap {
    "shelfcast-availability": ShelfcastAvailability;
  }
  interface HTMLElementEventMap {
    "shelfcast:change": CustomEvent<Position>;
    "shelfcast:reserved": CustomEvent<ReservationDetail>;
    "shelfcast:released": CustomEvent<ReservationDetail>;
    "shelfcast:error": CustomEvent<ErrorDetail>;
    "shelfcast:notify-request": CustomEvent<NotifyRequestDetail>;
    "shelfcast:store-chosen": CustomEvent<StoreChosenDetail>;
  }
}
