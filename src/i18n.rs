//! The element's words in English, German and French, and numbers and times in the locale's
//! format (clock times through the browser's `Intl`, so the wasm carries no locale data).

use crate::display::Failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    De,
    Fr,
}

impl Locale {
    /// `de-AT` → German; anything unknown → English.
    pub fn pick(tag: &str) -> Locale {
        match tag.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("de") => Locale::De,
            Some("fr") => Locale::Fr,
            _ => Locale::En,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
            Locale::Fr => "fr",
        }
    }

    /// A count as the locale writes it: 1,234 / 1.234 / 1 234 (a narrow no-break space), the
    /// same as the browser's `Intl.NumberFormat` for these locales (a browser test compares
    /// them). Done here because a page's first `Intl` call loads the browser's locale data,
    /// 20-40 ms on the first paint's path.
    pub fn number(self, n: i64) -> String {
        let separator = match self {
            Locale::En => ",",
            Locale::De => ".",
            Locale::Fr => "\u{202f}",
        };
        let digits = n.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3 + 1);
        if n < 0 {
            out.push('-');
        }
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(digit);
        }
        out
    }

    /// A clock time such as 10:45 (en: 10:45 AM).
    pub fn time(self, ms: f64) -> String {
        let opts = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&opts, &"hour".into(), &"2-digit".into());
        let _ = js_sys::Reflect::set(&opts, &"minute".into(), &"2-digit".into());
        js_sys::Date::new(&ms.into()).to_locale_time_string_with_options(self.tag(), &opts).into()
    }

    pub fn checking(self) -> &'static str {
        match self {
            Locale::En => "Checking stock…",
            Locale::De => "Bestand wird geprüft…",
            Locale::Fr => "Vérification du stock…",
        }
    }

    pub fn in_stock(self, n: i64) -> String {
        let n = self.number(n);
        match self {
            Locale::En => format!("In stock: {n}"),
            Locale::De => format!("Auf Lager: {n}"),
            Locale::Fr => format!("En stock : {n}"),
        }
    }

    /// "In stock" without the count, for the live region (counts are not announced).
    pub fn in_stock_short(self) -> &'static str {
        match self {
            Locale::En => "In stock",
            Locale::De => "Auf Lager",
            Locale::Fr => "En stock",
        }
    }

    pub fn low_stock_short(self) -> &'static str {
        match self {
            Locale::En => "Low stock",
            Locale::De => "Geringer Bestand",
            Locale::Fr => "Stock faible",
        }
    }

    pub fn low_stock(self, n: i64) -> String {
        let n = self.number(n);
        match self {
            Locale::En => format!("Only {n} left"),
            Locale::De => format!("Nur noch {n} verfügbar"),
            Locale::Fr => format!("Plus que {n} en stock"),
        }
    }

    pub fn notify(self) -> &'static str {
        match self {
            Locale::En => "Notify me",
            Locale::De => "Benachrichtigen",
            Locale::Fr => "M'avertir",
        }
    }

    pub fn out_of_stock(self) -> &'static str {
        match self {
            Locale::En => "Out of stock",
            Locale::De => "Ausverkauft",
            Locale::Fr => "Rupture de stock",
        }
    }

    pub fn live(self) -> &'static str {
        match self {
            Locale::En | Locale::De => "Live",
            Locale::Fr => "En direct",
        }
    }

    pub fn reconnecting(self) -> &'static str {
        match self {
            Locale::En => "Reconnecting… showing last known stock",
            Locale::De => "Verbindung wird wiederhergestellt… zuletzt bekannter Bestand",
            Locale::Fr => "Reconnexion… dernier stock connu",
        }
    }

    pub fn unreachable(self) -> &'static str {
        match self {
            Locale::En => "Stock information is unavailable right now. Retrying…",
            Locale::De => "Bestandsinformationen sind gerade nicht verfügbar. Neuer Versuch…",
            Locale::Fr => "Les informations de stock sont momentanément indisponibles. Nouvelle tentative…",
        }
    }

    pub fn config_error(self, code: &str) -> &'static str {
        match (self, code) {
            (Locale::En, "invalid_sku") => "This product code is not valid.",
            (Locale::De, "invalid_sku") => "Dieser Produktcode ist ungültig.",
            (Locale::Fr, "invalid_sku") => "Ce code produit n'est pas valide.",
            (Locale::En, _) => "No valid store is selected.",
            (Locale::De, _) => "Es ist keine gültige Filiale ausgewählt.",
            (Locale::Fr, _) => "Aucun magasin valide n'est sélectionné.",
        }
    }

    pub fn reserve(self) -> &'static str {
        match self {
            Locale::En => "Reserve for pickup",
            Locale::De => "Zur Abholung reservieren",
            Locale::Fr => "Réserver pour retrait",
        }
    }

    pub fn reserve_at(self, store: &str) -> String {
        match self {
            Locale::En => format!("Reserve for pickup at {store}"),
            Locale::De => format!("Zur Abholung in {store} reservieren"),
            Locale::Fr => format!("Réserver pour retrait à {store}"),
        }
    }

    pub fn reserving(self) -> &'static str {
        match self {
            Locale::En => "Reserving…",
            Locale::De => "Wird reserviert…",
            Locale::Fr => "Réservation…",
        }
    }

    pub fn held(self, qty: i64, left: &str, until: &str) -> String {
        let qty = self.number(qty);
        match self {
            Locale::En => format!("Reserved for you: {qty} · {left} left (until {until})"),
            Locale::De => format!("Für dich reserviert: {qty} · noch {left} (bis {until})"),
            Locale::Fr => format!("Réservé pour vous : {qty} · encore {left} (jusqu'à {until})"),
        }
    }

    pub fn held_short(self, qty: i64) -> String {
        let qty = self.number(qty);
        match self {
            Locale::En => format!("Reserved for you: {qty}"),
            Locale::De => format!("Für dich reserviert: {qty}"),
            Locale::Fr => format!("Réservé pour vous : {qty}"),
        }
    }

    pub fn cancel(self) -> &'static str {
        match self {
            Locale::En => "Cancel reservation",
            Locale::De => "Reservierung stornieren",
            Locale::Fr => "Annuler la réservation",
        }
    }

    pub fn failure(self, f: &Failure, store: &str) -> String {
        match (self, f) {
            (Locale::En, Failure::SoldOut) => format!("Just sold out at {store}."),
            (Locale::De, Failure::SoldOut) => format!("Gerade ausverkauft in {store}."),
            (Locale::Fr, Failure::SoldOut) => format!("Tout juste épuisé à {store}."),
            (Locale::En, Failure::Expired) => "Your reservation has expired.".into(),
            (Locale::De, Failure::Expired) => "Deine Reservierung ist abgelaufen.".into(),
            (Locale::Fr, Failure::Expired) => "Votre réservation a expiré.".into(),
            (Locale::En, Failure::Released) => "Your reservation was cancelled.".into(),
            (Locale::De, Failure::Released) => "Deine Reservierung wurde storniert.".into(),
            (Locale::Fr, Failure::Released) => "Votre réservation a été annulée.".into(),
            (Locale::En, Failure::ReleasedByStore) => "The store could not set this item aside.".into(),
            (Locale::De, Failure::ReleasedByStore) => "Die Filiale konnte diesen Artikel nicht zurücklegen.".into(),
            (Locale::Fr, Failure::ReleasedByStore) => "Le magasin n'a pas pu mettre cet article de côté.".into(),
            (Locale::En, Failure::Other(m)) => format!("Could not reserve: {m}"),
            (Locale::De, Failure::Other(m)) => format!("Reservierung nicht möglich: {m}"),
            (Locale::Fr, Failure::Other(m)) => format!("Réservation impossible : {m}"),
        }
    }

    pub fn unreachable_short(self) -> &'static str {
        match self {
            Locale::En => "the stock service cannot be reached",
            Locale::De => "der Bestandsdienst ist nicht erreichbar",
            Locale::Fr => "le service de stock est injoignable",
        }
    }
}

/// `berlin-mitte` → `Berlin Mitte`.
pub fn store_name(location: &str) -> String {
    let mut name = String::with_capacity(location.len());
    for word in location.split(['-', '_', '.']).filter(|w| !w.is_empty()) {
        if !name.is_empty() {
            name.push(' ');
        }
        let at = name.len();
        name.push_str(word);
        // Location ids are ASCII (the protocol's rule): no Unicode case tables needed.
        if let Some(first) = name.get_mut(at..at + 1) {
            first.make_ascii_uppercase();
        }
    }
    name
}

/// `mm:ss` of what is left until `until`.
pub fn countdown(now: f64, until: f64) -> String {
    let secs = ((until - now) / 1000.0).ceil().max(0.0) as i64;
    format!("{}:{:02}", secs / 60, secs % 60)
}
