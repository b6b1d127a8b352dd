//! The console's words in English, German and French. The language is the browser's unless
//! the user picks another (remembered on this device).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::De, Lang::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
            Lang::Fr => "Français",
        }
    }

    /// The language of a BCP 47 tag (`de-AT` is German); English for any other.
    pub fn from_tag(tag: &str) -> Lang {
        let primary = tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary).unwrap_or(Lang::En)
    }
}

/// Every text of the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T {
    Title,
    Token,
    SignIn,
    SignOut,
    WrongToken,
    Unreachable,
    Desk,
    Stock,
    Oversold,
    Store,
    Language,
    NoPickups,
    TimeLeft,
    Confirmed,
    HandOver,
    Release,
    Reason,
    NotFound,
    Damaged,
    CustomerCancelled,
    Other,
    Cancel,
    HandedOver,
    Released,
    Sound,
    Sku,
    Look,
    OnHand,
    Reserved,
    Available,
    Count,
    Adjust,
    Save,
    Counted,
    Adjusted,
    NothingOversold,
    Live,
    Reconnecting,
    Failed,
    Qty,
    Pickups,
    Stores,
    NoEdges,
    Link,
    Online,
    Offline,
    Pending,
    LastSync,
    LastError,
    Activity,
    EventsPerSecond,
    Lag,
    LastMinuteAvg,
    HoldsPerMinute,
    OpenStreams,
}

pub fn t(lang: Lang, text: T) -> &'static str {
    use Lang::*;
    use T::*;
    match (text, lang) {
        (Title, En) => "Shelfcast console",
        (Title, De) => "Shelfcast-Konsole",
        (Title, Fr) => "Console Shelfcast",
        (Token, En) => "Token",
        (Token, De) => "Token",
        (Token, Fr) => "Jeton",
        (SignIn, En) => "Sign in",
        (SignIn, De) => "Anmelden",
        (SignIn, Fr) => "Se connecter",
        (SignOut, En) => "Sign out",
        (SignOut, De) => "Abmelden",
        (SignOut, Fr) => "Se déconnecter",
        (WrongToken, En) => "That token is not known here. Check it and try again.",
        (WrongToken, De) => "Dieses Token ist hier nicht bekannt. Bitte prüfen und erneut versuchen.",
        (WrongToken, Fr) => "Ce jeton n'est pas connu ici. Vérifiez-le et réessayez.",
        (Unreachable, En) => "The hub cannot be reached. Try again in a moment.",
        (Unreachable, De) => "Der Hub ist nicht erreichbar. Bitte gleich noch einmal versuchen.",
        (Unreachable, Fr) => "Le hub est injoignable. Réessayez dans un instant.",
        (Desk, En) => "Pickup desk",
        (Desk, De) => "Abholtheke",
        (Desk, Fr) => "Retraits",
        (Stock, En) => "Stock look-up",
        (Stock, De) => "Bestand",
        (Stock, Fr) => "Stock",
        (Oversold, En) => "Oversold",
        (Oversold, De) => "Überverkauft",
        (Oversold, Fr) => "Survendu",
        (Store, En) => "Store",
        (Store, De) => "Filiale",
        (Store, Fr) => "Magasin",
        (Language, En) => "Language",
        (Language, De) => "Sprache",
        (Language, Fr) => "Langue",
        (NoPickups, En) => "No pickups waiting.",
        (NoPickups, De) => "Keine Abholungen offen.",
        (NoPickups, Fr) => "Aucun retrait en attente.",
        (TimeLeft, En) => "left",
        (TimeLeft, De) => "übrig",
        (TimeLeft, Fr) => "restant",
        (Confirmed, En) => "Ordered",
        (Confirmed, De) => "Bestellt",
        (Confirmed, Fr) => "Commandé",
        (HandOver, En) => "Hand over",
        (HandOver, De) => "Übergeben",
        (HandOver, Fr) => "Remettre",
        (Release, En) => "Release",
        (Release, De) => "Freigeben",
        (Release, Fr) => "Libérer",
        (Reason, En) => "Reason",
        (Reason, De) => "Grund",
        (Reason, Fr) => "Motif",
        (NotFound, En) => "Not found",
        (NotFound, De) => "Nicht gefunden",
        (NotFound, Fr) => "Introuvable",
        (Damaged, En) => "Damaged",
        (Damaged, De) => "Beschädigt",
        (Damaged, Fr) => "Endommagé",
        (CustomerCancelled, En) => "Customer cancelled",
        (CustomerCancelled, De) => "Vom Kunden storniert",
        (CustomerCancelled, Fr) => "Annulé par le client",
        (Other, En) => "Other",
        (Other, De) => "Anderes",
        (Other, Fr) => "Autre",
        (Cancel, En) => "Cancel",
        (Cancel, De) => "Abbrechen",
        (Cancel, Fr) => "Annuler",
        (HandedOver, En) => "Handed over",
        (HandedOver, De) => "Übergeben",
        (HandedOver, Fr) => "Remis",
        (Released, En) => "Released",
        (Released, De) => "Freigegeben",
        (Released, Fr) => "Libéré",
        (Sound, En) => "Sound on new pickup",
        (Sound, De) => "Ton bei neuer Abholung",
        (Sound, Fr) => "Son à chaque nouveau retrait",
        (Sku, En) => "SKU",
        (Sku, De) => "Artikelnummer",
        (Sku, Fr) => "Référence",
        (Look, En) => "Look up",
        (Look, De) => "Suchen",
        (Look, Fr) => "Rechercher",
        (OnHand, En) => "On hand",
        (OnHand, De) => "Bestand",
        (OnHand, Fr) => "En rayon",
        (Reserved, En) => "Reserved",
        (Reserved, De) => "Reserviert",
        (Reserved, Fr) => "Réservé",
        (Available, En) => "Available",
        (Available, De) => "Verfügbar",
        (Available, Fr) => "Disponible",
        (Count, En) => "Count",
        (Count, De) => "Zählen",
        (Count, Fr) => "Compter",
        (Adjust, En) => "Adjust",
        (Adjust, De) => "Korrigieren",
        (Adjust, Fr) => "Ajuster",
        (Save, En) => "Save",
        (Save, De) => "Speichern",
        (Save, Fr) => "Enregistrer",
        (Counted, En) => "Count saved",
        (Counted, De) => "Zählung gespeichert",
        (Counted, Fr) => "Comptage enregistré",
        (Adjusted, En) => "Adjustment saved",
        (Adjusted, De) => "Korrektur gespeichert",
        (Adjusted, Fr) => "Ajustement enregistré",
        (NothingOversold, En) => "Nothing is oversold.",
        (NothingOversold, De) => "Nichts ist überverkauft.",
        (NothingOversold, Fr) => "Rien n'est survendu.",
        (Live, En) => "Live",
        (Live, De) => "Live",
        (Live, Fr) => "En direct",
        (Reconnecting, En) => "Reconnecting…",
        (Reconnecting, De) => "Verbinde neu…",
        (Reconnecting, Fr) => "Reconnexion…",
        (Failed, En) => "That did not work:",
        (Failed, De) => "Das hat nicht geklappt:",
        (Failed, Fr) => "Cela n'a pas fonctionné :",
        (Qty, En) => "Qty",
        (Qty, De) => "Menge",
        (Qty, Fr) => "Qté",
        (Pickups, En) => "pickups waiting",
        (Pickups, De) => "Abholungen offen",
        (Pickups, Fr) => "retraits en attente",
        (Stores, En) => "Stores",
        (Stores, De) => "Filialen",
        (Stores, Fr) => "Magasins",
        (NoEdges, En) => "No store's edge node has reported yet.",
        (NoEdges, De) => "Noch kein Filial-Edge-Knoten hat sich gemeldet.",
        (NoEdges, Fr) => "Aucun nœud de magasin ne s'est encore signalé.",
        (Link, En) => "Link",
        (Link, De) => "Verbindung",
        (Link, Fr) => "Liaison",
        (Online, En) => "Online",
        (Online, De) => "Online",
        (Online, Fr) => "En ligne",
        (Offline, En) => "Offline",
        (Offline, De) => "Offline",
        (Offline, Fr) => "Hors ligne",
        (Pending, En) => "Events pending",
        (Pending, De) => "Offene Ereignisse",
        (Pending, Fr) => "Événements en attente",
        (LastSync, En) => "Last sync",
        (LastSync, De) => "Letzter Abgleich",
        (LastSync, Fr) => "Dernière synchro",
        (LastError, En) => "Last error",
        (LastError, De) => "Letzter Fehler",
        (LastError, Fr) => "Dernière erreur",
        (Activity, En) => "Activity",
        (Activity, De) => "Aktivität",
        (Activity, Fr) => "Activité",
        (EventsPerSecond, En) => "Events per second by type, last 5 minutes",
        (EventsPerSecond, De) => "Ereignisse pro Sekunde nach Art, letzte 5 Minuten",
        (EventsPerSecond, Fr) => "Événements par seconde par type, 5 dernières minutes",
        (Lag, En) => "Till-to-hub lag",
        (Lag, De) => "Verzögerung Kasse bis Hub",
        (Lag, Fr) => "Délai caisse-hub",
        (LastMinuteAvg, En) => "Last minute: average",
        (LastMinuteAvg, De) => "Letzte Minute: Mittel",
        (LastMinuteAvg, Fr) => "Dernière minute : moyenne",
        (HoldsPerMinute, En) => "Holds per minute",
        (HoldsPerMinute, De) => "Reservierungen pro Minute",
        (HoldsPerMinute, Fr) => "Réservations par minute",
        (OpenStreams, En) => "Open streams",
        (OpenStreams, De) => "Offene Streams",
        (OpenStreams, Fr) => "Flux ouverts",
    }
}

/// A time left as `m:ss`.
pub fn minutes(ms: f64) -> String {
    let s = (ms.max(0.0) / 1000.0).ceil() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_and_times() {
        assert_eq!(Lang::from_tag("de-AT"), Lang::De);
        assert_eq!(Lang::from_tag("fr"), Lang::Fr);
        assert_eq!(Lang::from_tag("es-ES"), Lang::En);
        assert_eq!(minutes(61_000.0), "1:01");
        assert_eq!(minutes(-5.0), "0:00");
        assert_ne!(t(Lang::De, T::HandOver), t(Lang::En, T::HandOver));
    }
}
