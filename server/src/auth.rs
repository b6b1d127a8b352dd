//! Device tokens. Only a SHA-256 digest of each token is kept in memory, so a heap dump or a log
//! line never holds a usable secret; looking a digest up in a map does not leak the token's
//! bytes through timing the way comparing strings would.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use shelfcast_protocol::LocationId;

/// The locations one device may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Locations(Vec<LocationId>),
}

impl Scope {
    pub fn allows(&self, location: &LocationId) -> bool {
        match self {
            Scope::All => true,
            Scope::Locations(ls) => ls.contains(location),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeviceTokens {
    by_digest: Arc<HashMap<[u8; 32], Scope>>,
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl DeviceTokens {
    /// Adds `TOKEN=LOC1,LOC2` or `TOKEN=*`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), String> {
        let (token, locations) = spec
            .rsplit_once('=')
            .ok_or_else(|| format!("device token `{}…` must look like TOKEN=LOC1,LOC2 or TOKEN=*", prefix(spec)))?;
        if token.is_empty() || !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err("a device token must be printable ASCII without spaces".into());
        }
        let scope = if locations.trim() == "*" {
            Scope::All
        } else {
            let ls = locations
                .split(',')
                .map(|l| LocationId::parse(l.trim()).map_err(|e| format!("location `{l}` in a device token {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Scope::Locations(ls)
        };
        Arc::make_mut(&mut self.by_digest).insert(digest(token), scope);
        Ok(())
    }

    /// The same tokens, each narrowed to `location`: an edge node writes only its own store.
    pub fn restricted_to(&self, location: &LocationId) -> DeviceTokens {
        let by_digest = self
            .by_digest
            .iter()
            .map(|(d, s)| {
                let narrowed = if s.allows(location) { vec![location.clone()] } else { Vec::new() };
                (*d, Scope::Locations(narrowed))
            })
            .collect();
        DeviceTokens { by_digest: Arc::new(by_digest) }
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    pub fn scope(&self, token: &str) -> Option<&Scope> {
        self.by_digest.get(&digest(token))
    }
}

fn prefix(s: &str) -> &str {
    &s[..s.len().min(4)]
}

/// The bearer token of a request, if it carries a well-formed one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let mut t = DeviceTokens::default();
        t.add_spec("t1=berlin,hamburg").unwrap();
        t.add_spec("t2=*").unwrap();
        let berlin = LocationId::parse("berlin").unwrap();
        let paris = LocationId::parse("paris").unwrap();
        assert!(t.scope("t1").unwrap().allows(&berlin));
        assert!(!t.scope("t1").unwrap().allows(&paris));
        assert!(t.scope("t2").unwrap().allows(&paris));
        assert!(t.scope("t3").is_none());
        assert!(t.add_spec("nolocations").is_err());
        assert!(t.add_spec("t=bad place").is_err());
    }

    #[test]
    fn bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
