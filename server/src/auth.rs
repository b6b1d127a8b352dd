//! Who may do what.
//!
//! Device tokens: only a SHA-256 digest of each token is kept (in memory, and optionally in the
//! tokens file as `sha256:<hex>`), so a heap dump, a log line or a copied config never holds a
//! usable secret. A request's token is hashed and the digest looked up; the final comparison of
//! digests is constant-time, and timing the lookup could at most reveal bits of a digest, which
//! do not help anyone find a token (that would take a SHA-256 preimage).
//!
//! Tokens come from `--device-token` flags (fixed for the life of the process) and from an
//! optional `--tokens-file`, re-read on SIGHUP, when the file changes, and on
//! `POST /admin/reload`: tokens rotate without a restart. A file that does not parse leaves the
//! tokens in force as they were, and says which line is wrong.
//!
//! The admin token guards the operational endpoints (`/metrics`, `/admin/*`).
//!
//! The console signs staff in with a device token or the admin token once and then carries a
//! session cookie (HttpOnly, SameSite=Strict), so the token never travels in a URL and an
//! EventSource is authorised too. The cookie is `<kind>.<token digest>.<expiry>.<HMAC>`,
//! signed with the session secret: any replica with the same secret accepts it, nothing is
//! stored per session, and a token removed from the tokens file ends its sessions at once
//! (the digest must still be a token in force).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use shelfcast_protocol::LocationId;
use subtle::ConstantTimeEq;

/// The locations one device may write.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

    fn narrowed_to(&self, location: &LocationId) -> Scope {
        Scope::Locations(if self.allows(location) { vec![location.clone()] } else { Vec::new() })
    }
}

/// A set of device tokens, by digest: each one's scope and label.
#[derive(Clone, Debug, Default)]
pub struct DeviceTokens {
    by_digest: HashMap<[u8; 32], (Scope, Arc<str>)>,
}

/// The longest label a device token may carry.
pub const MAX_LABEL: usize = 64;
/// The label of changes made with the admin token.
pub const ADMIN_LABEL: &str = "admin";

/// The label of a token given none: the first 8 hex digits of its digest, which tell tokens
/// apart in a position's history and say nothing that helps anyone find the token.
fn default_label(digest: &[u8; 32]) -> Arc<str> {
    format!("token-{}", hex::encode(&digest[..4])).into()
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl DeviceTokens {
    /// Adds `TOKEN=LOC1,LOC2`, `TOKEN=*`, or the same with `sha256:<64 hex digits>` in place of
    /// the token (what `shelfcast hash-token` prints), so a tokens file need not hold secrets;
    /// `@LABEL` after the locations names the device in positions' histories (letters, digits,
    /// `.`, `_`, `-`; at most 64): `TOKEN=berlin@till-3`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), String> {
        let (token, locations) = spec.rsplit_once('=').ok_or_else(|| {
            "a device token must look like TOKEN=LOC1,LOC2 or TOKEN=* (the token itself is not repeated here)".to_string()
        })?;
        let (locations, label) = match locations.split_once('@') {
            Some((locations, label)) => {
                let valid = !label.is_empty()
                    && label.len() <= MAX_LABEL
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !valid {
                    return Err(format!("a device token's label is 1 to {MAX_LABEL} letters, digits, `.`, `_` or `-` (got `{label}`)"));
                }
                (locations, Some(label))
            }
            None => (locations, None),
        };
        let digest = match token.strip_prefix("sha256:") {
            Some(hex_digest) => {
                let mut d = [0u8; 32];
                hex::decode_to_slice(hex_digest, &mut d)
                    .map_err(|_| "a hashed device token must be sha256: and 64 hex digits".to_string())?;
                d
            }
            None if token.is_empty() || !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) => {
                return Err("a device token must be printable ASCII without spaces".into());
            }
            None => digest(token),
        };
        let scope = if locations.trim() == "*" {
            Scope::All
        } else {
            let ls = locations
                .split(',')
                .map(|l| LocationId::parse(l.trim()).map_err(|e| format!("location `{l}` in a device token {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Scope::Locations(ls)
        };
        let label = label.map_or_else(|| default_label(&digest), Arc::from);
        self.by_digest.insert(digest, (scope, label));
        Ok(())
    }

    /// A tokens file: one spec a line; blank lines and lines starting with `#` are skipped.
    pub fn parse_file(text: &str) -> Result<DeviceTokens, String> {
        let mut tokens = DeviceTokens::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            tokens.add_spec(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        Ok(tokens)
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    fn scope_of(&self, digest: &[u8; 32]) -> Option<&(Scope, Arc<str>)> {
        let (stored, grant) = self.by_digest.get_key_value(digest)?;
        bool::from(stored.ct_eq(digest)).then_some(grant)
    }

    fn merged(&self, other: &DeviceTokens) -> DeviceTokens {
        let mut by_digest = self.by_digest.clone();
        by_digest.extend(other.by_digest.iter().map(|(d, s)| (*d, s.clone())));
        DeviceTokens { by_digest }
    }
}

/// The tokens in force, shared by every request handler; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    inner: Arc<Inner>,
}

/// The operators' tokens: the admin token (`/admin/*` and `/metrics`) and the metrics token
/// (`/metrics` only).
#[derive(Clone, Copy, Debug, Default)]
pub struct Operators<'a> {
    pub admin: Option<&'a str>,
    pub metrics: Option<&'a str>,
    /// Signs console sessions; without it this process picks a random one at start.
    pub session_secret: Option<&'a str>,
}

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "shelfcast_session";
/// How long a console session lasts: a shift and then some.
pub const SESSION_SECONDS: u64 = 12 * 3600;

/// Who signed in to the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub scope: Scope,
    pub admin: bool,
    /// What the staff member's changes are labelled with: the token's label, or `admin`.
    pub label: Arc<str>,
}

#[derive(Debug, Default)]
struct Inner {
    /// From the command line (and the demo): always in force.
    fixed: DeviceTokens,
    file: Option<PathBuf>,
    current: RwLock<Arc<DeviceTokens>>,
    /// On an edge node: every token is narrowed to the store's own location.
    restrict: Option<LocationId>,
    admin: Option<[u8; 32]>,
    /// Reads `/metrics` and nothing else: what a scraper is given instead of the admin token.
    metrics: Option<[u8; 32]>,
    session_key: [u8; 32],
}

impl Credentials {
    /// Loads `file` (if any) on top of `fixed`; fails if the file cannot be read or parsed.
    pub fn new(fixed: DeviceTokens, file: Option<PathBuf>, restrict: Option<LocationId>, operators: Operators) -> Result<Self, String> {
        let (admin, metrics) = (operators.admin.map(digest), operators.metrics.map(digest));
        let session_key = match operators.session_secret {
            Some(secret) => digest(secret),
            None => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).expect("the OS random number generator");
                key
            }
        };
        let inner = Inner { fixed, file, current: RwLock::default(), restrict, admin, metrics, session_key };
        let c = Credentials { inner: Arc::new(inner) };
        c.reload()?;
        Ok(c)
    }

    /// Re-reads the tokens file. On failure the tokens in force stay as they were.
    pub fn reload(&self) -> Result<usize, String> {
        let from_file = match &self.inner.file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                DeviceTokens::parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => DeviceTokens::default(),
        };
        let merged = Arc::new(self.inner.fixed.merged(&from_file));
        let n = merged.len();
        *self.inner.current.write().expect("tokens lock") = merged;
        Ok(n)
    }

    pub fn file(&self) -> Option<&PathBuf> {
        self.inner.file.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.current.read().expect("tokens lock").is_empty()
    }

    /// The locations `token` may write, or `None` for an unknown token.
    pub fn scope(&self, token: &str) -> Option<Scope> {
        self.grant(&digest(token)).map(|(scope, _)| scope)
    }

    /// The scope (narrowed on an edge node) and label of the device token with digest `d`.
    fn grant(&self, d: &[u8; 32]) -> Option<(Scope, Arc<str>)> {
        let current = self.inner.current.read().expect("tokens lock").clone();
        let (scope, label) = current.scope_of(d)?;
        let scope = match &self.inner.restrict {
            Some(location) => scope.narrowed_to(location),
            None => scope.clone(),
        };
        Some((scope, label.clone()))
    }

    /// The scope of the request's bearer token, or of its console session, or a 401 saying `hint`.
    pub fn device(&self, headers: &HeaderMap, hint: &str) -> Result<Scope, crate::error::ApiError> {
        self.device_labelled(headers, hint).map(|(scope, _)| scope)
    }

    /// [`Credentials::device`] with the token's label, which its changes carry in positions'
    /// histories.
    pub fn device_labelled(&self, headers: &HeaderMap, hint: &str) -> Result<(Scope, Arc<str>), crate::error::ApiError> {
        match bearer(headers) {
            Some(token) => self.grant(&digest(token)),
            None => self.session(headers).map(|s| (s.scope, s.label)),
        }
        .ok_or_else(|| crate::error::ApiError::Unauthorized(hint.into()))
    }

    /// The request's device token or console session, or the admin token (every location).
    pub fn device_or_admin(&self, headers: &HeaderMap, hint: &str) -> Result<(Scope, Arc<str>), crate::error::ApiError> {
        if self.is_admin(headers) {
            return Ok((self.all(), ADMIN_LABEL.into()));
        }
        self.device_labelled(headers, hint)
    }

    /// Every location this process serves: all of them on a hub, its own on an edge node.
    fn all(&self) -> Scope {
        match &self.inner.restrict {
            Some(location) => Scope::Locations(vec![location.clone()]),
            None => Scope::All,
        }
    }

    /// Signs in with a device token or the admin token: the session and its cookie's value.
    pub fn sign_in(&self, token: &str) -> Option<(Session, String)> {
        let d = digest(token);
        let kind = if self.inner.admin.is_some_and(|a| bool::from(a.ct_eq(&d))) { 'a' } else { 'd' };
        let session = self.session_of(kind, &d)?;
        let expires = now_seconds() + SESSION_SECONDS;
        let signed = format!("{kind}.{}.{expires}", hex::encode(d));
        let mac = hex::encode(self.mac(&signed).finalize().into_bytes());
        Some((session, format!("{signed}.{mac}")))
    }

    /// The console session the request's cookie carries, if it is one this hub signed, has not
    /// expired, and its token is still in force. A request from another origin (a browser
    /// says so in `Origin`) is not given the session: the origin's host must be the request's
    /// `Host`, or the `X-Forwarded-Host` a reverse proxy that rewrites `Host` sets (a page of
    /// another site cannot send that header: it is not one a browser lets through without the
    /// hub's consent, which it never gives).
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin_host = origin.as_bytes().splitn(2, |&b| b == b':').nth(1)?.strip_prefix(b"//")?;
            let forwarded = headers.get("x-forwarded-host").and_then(|h| h.to_str().ok()).and_then(|h| h.split(',').next());
            let same = |host: &[u8]| host.trim_ascii() == origin_host;
            if !headers.get(header::HOST).is_some_and(|h| same(h.as_bytes())) && !forwarded.is_some_and(|h| same(h.as_bytes())) {
                return None;
            }
        }
        let value = cookie(headers, SESSION_COOKIE)?;
        let (signed, mac) = value.rsplit_once('.')?;
        self.mac(signed).verify_slice(&hex::decode(mac).ok()?).ok()?;
        let mut parts = signed.split('.');
        let (kind, d, expires) = (parts.next()?, parts.next()?, parts.next()?);
        if expires.parse::<u64>().ok()? <= now_seconds() {
            return None;
        }
        let mut token_digest = [0u8; 32];
        hex::decode_to_slice(d, &mut token_digest).ok()?;
        self.session_of(kind.chars().next()?, &token_digest)
    }

    fn session_of(&self, kind: char, d: &[u8; 32]) -> Option<Session> {
        match kind {
            'a' => self.inner.admin.filter(|a| bool::from(a.ct_eq(d))).map(|_| Session {
                scope: self.all(),
                admin: true,
                label: ADMIN_LABEL.into(),
            }),
            'd' => self.grant(d).map(|(scope, label)| Session { scope, admin: false, label }),
            _ => None,
        }
    }

    fn mac(&self, signed: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.inner.session_key).expect("HMAC takes any key");
        mac.update(signed.as_bytes());
        mac
    }

    pub fn len(&self) -> usize {
        self.inner.current.read().expect("tokens lock").len()
    }

    pub fn has_admin(&self) -> bool {
        self.inner.admin.is_some()
    }

    /// Whether the request carries the admin token (constant-time on the digests).
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        matches_digest(self.inner.admin.as_ref(), headers)
    }

    /// Whether `/metrics` is guarded: by the admin token, the metrics token or both.
    pub fn guards_metrics(&self) -> bool {
        self.inner.admin.is_some() || self.inner.metrics.is_some()
    }

    /// Whether the request may read `/metrics`: with the admin token or the metrics token.
    pub fn may_scrape(&self, headers: &HeaderMap) -> bool {
        self.is_admin(headers) || matches_digest(self.inner.metrics.as_ref(), headers)
    }
}

/// Whether the request's bearer token has digest `expected` (constant-time on the digests).
fn matches_digest(expected: Option<&[u8; 32]>, headers: &HeaderMap) -> bool {
    match (expected, bearer(headers)) {
        (Some(expected), Some(token)) => bool::from(expected.ct_eq(&digest(token))),
        _ => false,
    }
}

fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The value of the cookie `name` a request carries.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
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

    fn creds(fixed: &[&str], file: Option<PathBuf>, restrict: Option<&str>) -> Credentials {
        let mut t = DeviceTokens::default();
        for s in fixed {
            t.add_spec(s).unwrap();
        }
        Credentials::new(
            t,
            file,
            restrict.map(|l| LocationId::parse(l).unwrap()),
            Operators { admin: Some("admin-secret"), metrics: None, session_secret: None },
        )
        .unwrap()
    }

    #[test]
    fn scopes() {
        let c = creds(&["t1=berlin,hamburg", "t2=*"], None, None);
        let berlin = LocationId::parse("berlin").unwrap();
        let paris = LocationId::parse("paris").unwrap();
        assert!(c.scope("t1").unwrap().allows(&berlin));
        assert!(!c.scope("t1").unwrap().allows(&paris));
        assert!(c.scope("t2").unwrap().allows(&paris));
        assert!(c.scope("t3").is_none());
        let mut t = DeviceTokens::default();
        assert!(t.add_spec("nolocations").is_err());
        assert!(t.add_spec("t=bad place").is_err());
        assert!(t.add_spec("sha256:abc=berlin").is_err());
    }

    #[test]
    fn a_token_is_known_by_its_label_or_by_a_digest_prefix() {
        let c = creds(&["t1=berlin@till-3", "t2=*", "a@b=c=berlin"], None, None);
        let labelled = |token: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
            c.device_or_admin(&h, "").map(|(_, label)| label.to_string())
        };
        assert_eq!(labelled("t1").unwrap(), "till-3");
        assert_eq!(labelled("t2").unwrap(), format!("token-{}", &hex::encode(digest("t2"))[..8]));
        assert_eq!(labelled("a@b=c").unwrap().len(), "token-".len() + 8, "`@` in a token is not a label");
        assert_eq!(labelled("admin-secret").unwrap(), ADMIN_LABEL);
        assert!(labelled("t3").is_err());
        let mut t = DeviceTokens::default();
        for bad in ["t=berlin@", "t=berlin@two words", "t=berlin@a@b", "t=*@a:b", &format!("t=b@{}", "x".repeat(65))] {
            assert!(t.add_spec(bad).unwrap_err().contains("label"), "{bad}");
        }
    }

    #[test]
    fn an_edge_narrows_every_token_to_its_store() {
        let c = creds(&["t1=berlin,hamburg", "t2=*", "t3=paris"], None, Some("berlin"));
        let berlin = LocationId::parse("berlin").unwrap();
        let hamburg = LocationId::parse("hamburg").unwrap();
        assert_eq!(c.scope("t1"), Some(Scope::Locations(vec![berlin.clone()])));
        assert!(!c.scope("t2").unwrap().allows(&hamburg));
        assert!(!c.scope("t3").unwrap().allows(&berlin));
    }

    #[test]
    fn a_tokens_file_rotates_and_a_broken_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let hashed = hex::encode(digest("till-2"));
        std::fs::write(&path, format!("# tills\ntill-1=berlin\n\nsha256:{hashed}=hamburg\n")).unwrap();
        let c = creds(&["fixed=*"], Some(path.clone()), None);
        assert!(c.scope("till-1").is_some() && c.scope("till-2").is_some() && c.scope("fixed").is_some());
        assert!(c.scope(&format!("sha256:{hashed}")).is_none(), "the digest itself is not a token");

        std::fs::write(&path, "till-3=berlin\n").unwrap();
        assert_eq!(c.reload(), Ok(2));
        assert!(c.scope("till-1").is_none(), "a token removed from the file stops working");
        assert!(c.scope("till-3").is_some() && c.scope("fixed").is_some());

        std::fs::write(&path, "till-4=berlin\nbroken line\n").unwrap();
        let err = c.reload().unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(c.scope("till-3").is_some() && c.scope("till-4").is_none(), "a broken file changes nothing");
    }

    #[test]
    fn admin_token() {
        let c = creds(&[], None, None);
        let mut h = HeaderMap::new();
        assert!(!c.is_admin(&h));
        h.insert(header::AUTHORIZATION, "Bearer admin-secret".parse().unwrap());
        assert!(c.is_admin(&h));
        h.insert(header::AUTHORIZATION, "Bearer admin-secreT".parse().unwrap());
        assert!(!c.is_admin(&h));
    }

    #[test]
    fn a_console_session_carries_its_tokens_scope_until_the_token_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "staff=berlin@desk-1\n").unwrap();
        let c = creds(&[], Some(path.clone()), None);
        let berlin = LocationId::parse("berlin").unwrap();
        let with = |cookie: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, format!("other=1; {SESSION_COOKIE}={cookie}").parse().unwrap());
            h.insert(header::HOST, "hub:8080".parse().unwrap());
            h
        };
        assert!(c.sign_in("nobody").is_none(), "an unknown token signs no one in");
        let (session, cookie) = c.sign_in("staff").unwrap();
        assert_eq!(session, Session { scope: Scope::Locations(vec![berlin.clone()]), admin: false, label: "desk-1".into() });
        assert!(!cookie.contains("staff"), "the cookie does not hold the token");
        assert_eq!(c.session(&with(&cookie)), Some(session.clone()));
        assert!(c.device(&with(&cookie), "").unwrap().allows(&berlin));

        let mut cross = with(&cookie);
        cross.insert(header::ORIGIN, "https://elsewhere.example".parse().unwrap());
        assert_eq!(c.session(&cross), None, "another origin's request is not given the session");
        let mut same = with(&cookie);
        same.insert(header::ORIGIN, "https://hub:8080".parse().unwrap());
        assert_eq!(c.session(&same), Some(session.clone()));
        let mut proxied = with(&cookie);
        proxied.insert(header::HOST, "10.0.0.7:8080".parse().unwrap());
        proxied.insert(header::ORIGIN, "https://console.shop.example".parse().unwrap());
        assert_eq!(c.session(&proxied), None, "behind a proxy that rewrites Host, without its X-Forwarded-Host");
        proxied.insert("x-forwarded-host", "console.shop.example".parse().unwrap());
        assert_eq!(c.session(&proxied), Some(session.clone()), "the site the proxy serves");
        proxied.insert("x-forwarded-host", "elsewhere.example".parse().unwrap());
        assert_eq!(c.session(&proxied), None);

        let forged = format!("a{}", &cookie[1..]);
        assert_eq!(c.session(&with(&forged)), None, "a cookie changed in any way is refused");
        let other = creds(&[], Some(path.clone()), None);
        assert_eq!(other.session(&with(&cookie)), None, "another secret signed it");

        let (admin, admin_cookie) = c.sign_in("admin-secret").unwrap();
        assert!(admin.admin && admin.scope == Scope::All);
        assert_eq!(c.session(&with(&admin_cookie)).map(|s| s.admin), Some(true));

        std::fs::write(&path, "someone-else=berlin\n").unwrap();
        c.reload().unwrap();
        assert_eq!(c.session(&with(&cookie)), None, "a token taken out of the file ends its sessions");
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
