//! From attributes to configuration. Attributes are kept raw; [`Attrs::config`] parses them
//! into positions to watch, or an error to show.

use shelfcast_protocol::{LocationId, PositionKey, Sku, DEFAULT_LOW_STOCK};

use crate::i18n::Locale;
use crate::small::Map;

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Attrs {
    pub values: Map<String, String>,
    /// Where the script came from: the hub, unless `hub` says otherwise.
    pub default_hub: String,
    /// The page's `lang`, used unless `locale` is set.
    pub page_lang: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub hub: String,
    pub positions: Vec<PositionKey>,
    pub locale: Locale,
    pub low_stock: i64,
    pub reservable: bool,
    /// "Notify me" while out of stock, firing `shelfcast:notify-request`.
    pub notify: bool,
}

/// What is wrong with the attributes, in terms a shop developer can fix.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigError {
    InvalidSku,
    InvalidLocation,
    MissingLocation,
    TooManyLocations,
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::InvalidSku => "invalid_sku",
            ConfigError::InvalidLocation => "invalid_location",
            ConfigError::MissingLocation => "missing_location",
            ConfigError::TooManyLocations => "too_many_locations",
        }
    }
}

impl Attrs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|s| s.trim_ascii()).filter(|s| !s.is_empty())
    }

    pub fn locale(&self) -> Locale {
        Locale::pick(self.get("locale").unwrap_or(&self.page_lang))
    }

    pub fn config(&self) -> Result<Config, ConfigError> {
        let sku = Sku::parse(self.get("sku").unwrap_or("")).map_err(|_| ConfigError::InvalidSku)?;
        let list = self.get("locations").or(self.get("location")).ok_or(ConfigError::MissingLocation)?;
        let mut positions = Vec::new();
        for l in list.split(',').map(str::trim_ascii).filter(|l| !l.is_empty()) {
            let key = PositionKey::new(sku.clone(), LocationId::parse(l).map_err(|_| ConfigError::InvalidLocation)?);
            if !positions.contains(&key) {
                positions.push(key);
            }
        }
        if positions.is_empty() {
            return Err(ConfigError::MissingLocation);
        }
        if positions.len() > shelfcast_protocol::wire::MAX_POSITIONS {
            return Err(ConfigError::TooManyLocations);
        }
        let hub = self.get("hub").unwrap_or(&self.default_hub).trim_end_matches('/').to_string();
        let low_stock = self.get("low-stock").and_then(|s| s.parse().ok()).filter(|n: &i64| *n >= 0).unwrap_or(DEFAULT_LOW_STOCK);
        // Boolean attributes: present means on, unless spelled out as "false".
        let on = |name: &str| self.values.get(name).is_some_and(|v| v.trim_ascii() != "false");
        Ok(Config { hub, positions, locale: self.locale(), low_stock, reservable: on("reservable"), notify: on("notify") })
    }
}
