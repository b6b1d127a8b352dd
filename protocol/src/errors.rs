//! Every error code Shelfcast answers with, in one list: the `code` of an HTTP error body and of
//! a rejected event. `docs/api.md` documents each one (a test checks that it does).

use std::fmt;

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the list.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    /// The body is not JSON, or an NDJSON line is not a JSON object.
    MalformedBody = "malformed_body",
    /// A request the HTTP layer could not understand (e.g. a query string that does not parse).
    BadRequest = "bad_request",
    InvalidQuery = "invalid_query",
    InvalidId = "invalid_id",
    InvalidType = "invalid_type",
    InvalidSku = "invalid_sku",
    InvalidLocation = "invalid_location",
    InvalidPosition = "invalid_position",
    InvalidQty = "invalid_qty",
    InvalidAt = "invalid_at",
    InvalidKey = "invalid_key",
    /// A staff release without a known reason, or with a note too long.
    InvalidReason = "invalid_reason",
    TooManyPositions = "too_many_positions",
    /// A store directory entry with a missing or bad field.
    InvalidStore = "invalid_store",
    /// A webhook subscription with a bad or non-public `url`, or unknown `events` or `locations`.
    InvalidWebhook = "invalid_webhook",
    /// A watch's `subscriber` that is not the shop's opaque id.
    InvalidSubscriber = "invalid_subscriber",
    /// `PUT` or `DELETE` of a store on a hub whose directory is its `--locations-file`.
    DirectoryFromFile = "directory_from_file",
    /// `POST /admin/reload` on a hub without a tokens file.
    NoTokensFile = "no_tokens_file",
    Unauthorized = "unauthorized",
    /// The device token does not cover the location.
    ForbiddenLocation = "forbidden_location",
    /// An edge node asked about another location than its own.
    WrongLocation = "wrong_location",
    NotFound = "not_found",
    MethodNotAllowed = "method_not_allowed",
    RequestTimeout = "request_timeout",
    InsufficientStock = "insufficient_stock",
    InvalidTransition = "invalid_transition",
    PayloadTooLarge = "payload_too_large",
    TooManyEvents = "too_many_events",
    UnsupportedMediaType = "unsupported_media_type",
    IdempotencyKeyReused = "idempotency_key_reused",
    InvalidTokensFile = "invalid_tokens_file",
    RateLimited = "rate_limited",
    InternalError = "internal_error",
    StorageUnavailable = "storage_unavailable",
    /// An edge node cannot reach its hub for an action only the hub decides (a pickup, a release).
    HubUnreachable = "hub_unreachable",
    TooManyStreams = "too_many_streams",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ErrorCode> for String {
    fn from(code: ErrorCode) -> String {
        code.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!(seen.insert(s), "{s} twice");
        }
    }
}
