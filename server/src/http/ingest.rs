//! `POST /v1/events`: a JSON array or NDJSON of events. A body that does not parse is refused
//! whole; a well-formed event with a bad field is rejected alone, and the rest are applied.

use shelfcast_protocol::wire::ErrorBody;
use shelfcast_protocol::ErrorCode;
use std::borrow::Cow;
use std::fmt;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use shelfcast_protocol::event::{EventError, Field, RawEvent};
use shelfcast_protocol::ledger::Outcome;
use shelfcast_protocol::wire::{ErrorDetail, EventResult, IngestResponse, ResultStatus};
use shelfcast_protocol::Event;

use super::AppState;
use crate::error::ApiError;

pub const MAX_BODY: usize = 4 * 1024 * 1024;
pub const MAX_EVENTS: usize = 10_000;

#[utoipa::path(post, path = "/v1/events", tag = "ingest",
    request_body(description = "At most 10,000 events and 4 MiB", content(
        (Vec<EventIn> = "application/json"),
        (String = "application/x-ndjson"))),
    responses(
        (status = 200, description = "Each event applied, a duplicate, or rejected on its own, in request order", body = IngestResponse),
        (status = 400, description = "The body does not parse; nothing was applied", body = ErrorBody),
        (status = 401, description = "No known device token", body = ErrorBody),
        (status = 413, description = "Over 10,000 events or 4 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json or application/x-ndjson", body = ErrorBody),
        (status = 503, description = "Storage cannot take writes right now; nothing was changed", body = ErrorBody)),
    security(("device_token" = [])))]
pub async fn post_events(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<IngestResponse>, ApiError> {
    let (scope, by) = app.tokens.device_labelled(&headers, "Send a device token as `Authorization: Bearer <token>`.")?;
    let ndjson = match content_type(&headers) {
        Some("application/json") => false,
        Some("application/x-ndjson") => true,
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "Send events as application/json (an array) or application/x-ndjson (one per line).".into(),
            ))
        }
    };
    let too_large = || ApiError::TooLarge {
        code: ErrorCode::PayloadTooLarge,
        message: format!("A request may carry at most {} MiB: split the events into smaller requests.", MAX_BODY >> 20),
    };
    if headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()).is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let bytes = to_bytes(body, MAX_BODY).await.map_err(|_| too_large())?;
    let decoded = decode(&bytes, ndjson)?;

    let mut results = Vec::with_capacity(decoded.len());
    let mut valid = Vec::with_capacity(decoded.len());
    let mut slots = Vec::with_capacity(decoded.len());
    for (id, event) in decoded {
        let error = match event {
            Ok(e) if scope.allows(&e.key.location) => {
                slots.push(results.len());
                valid.push(e);
                None
            }
            Ok(e) => Some(ErrorDetail {
                code: ErrorCode::ForbiddenLocation.into(),
                message: format!("This device token may not write location `{}`.", e.key.location),
                available: None,
            }),
            Err(e) => Some(ErrorDetail { code: e.code.into(), message: e.message, available: None }),
        };
        let status = if error.is_some() { ResultStatus::Rejected } else { ResultStatus::Applied };
        results.push(EventResult { id, status, error, version: None });
    }
    let rejected = results.len() - valid.len();
    let seen: Vec<_> = valid.iter().map(|e| (e.kind, e.at)).collect();
    let outcomes = app.writer.ingest(valid, by).await?;
    let mut applied = 0;
    let mut fresh = Vec::with_capacity(seen.len());
    for ((slot, (outcome, version)), seen) in slots.into_iter().zip(outcomes).zip(seen) {
        results[slot].version = Some(version);
        if outcome == Outcome::Duplicate {
            results[slot].status = ResultStatus::Duplicate;
        } else {
            applied += 1;
            fresh.push(seen);
        }
    }
    let duplicates = results.len() - rejected - applied;
    let m = &app.metrics.events;
    m.with_label_values(&["applied"]).inc_by(applied as u64);
    m.with_label_values(&["duplicate"]).inc_by(duplicates as u64);
    m.with_label_values(&["rejected"]).inc_by(rejected as u64);
    Ok(Json(IngestResponse { applied, duplicates, rejected, results }))
}

/// The media type without parameters, lower-cased.
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let t = v.split(';').next()?.trim();
    ["application/json", "application/x-ndjson"].into_iter().find(|k| t.eq_ignore_ascii_case(k))
}

/// One event of a request: its `id` as sent (when it was a string), and the event, or why it is
/// rejected on its own.
pub type Decoded = (Option<String>, Result<Event, EventError>);

/// Reads a request body (a JSON array, or NDJSON when `ndjson`). The whole body is refused
/// (400, 413) when it does not parse or carries more than `MAX_EVENTS`; otherwise each event is
/// valid or rejected by itself. Never panics, whatever the bytes: it is fuzzed.
pub fn decode(bytes: &[u8], ndjson: bool) -> Result<Vec<Decoded>, ApiError> {
    let wire = parse_body(bytes, ndjson)?;
    if wire.len() > MAX_EVENTS {
        return Err(ApiError::TooLarge {
            code: ErrorCode::TooManyEvents,
            message: format!("A request may carry at most {MAX_EVENTS} events ({} sent): split it.", wire.len()),
        });
    }
    Ok(wire
        .iter()
        .map(|w| {
            let id = match &w.id.0 {
                Field::Value(s) => Some(s.to_string()),
                _ => None,
            };
            (id, w.as_raw().validate())
        })
        .collect())
}

fn parse_body(bytes: &[u8], ndjson: bool) -> Result<Vec<WireEvent<'_>>, ApiError> {
    let malformed = |what: String| ApiError::bad(ErrorCode::MalformedBody, what);
    let items: Vec<(usize, &RawValue)> = if ndjson {
        let mut items = Vec::new();
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let raw: &RawValue = serde_json::from_slice(line)
                .map_err(|e| malformed(format!("line {} is not valid JSON ({e}); nothing was applied", n + 1)))?;
            items.push((n + 1, raw));
        }
        items
    } else {
        let all: Vec<&RawValue> = serde_json::from_slice(bytes)
            .map_err(|e| malformed(format!("the body is not a JSON array of events ({e}); nothing was applied")))?;
        all.into_iter().enumerate().map(|(i, r)| (i + 1, r)).collect()
    };
    let unit = if ndjson { "line" } else { "event" };
    items
        .into_iter()
        .map(|(n, raw)| {
            if !raw.get().starts_with('{') {
                return Err(malformed(format!("{unit} {n} is not a JSON object; nothing was applied")));
            }
            serde_json::from_str::<WireEvent<'_>>(raw.get())
                .map_err(|e| malformed(format!("{unit} {n} could not be read ({e}); nothing was applied")))
        })
        .collect()
}

/// An event as sent, each field kept even when it has the wrong type, so the answer can say
/// which field is wrong instead of refusing the whole request.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow, default)]
    id: LooseStr<'a>,
    #[serde(borrow, default, rename = "type")]
    kind: LooseStr<'a>,
    #[serde(borrow, default)]
    sku: LooseStr<'a>,
    #[serde(borrow, default)]
    location: LooseStr<'a>,
    #[serde(default)]
    qty: LooseInt,
    #[serde(borrow, default)]
    at: LooseStr<'a>,
}

impl WireEvent<'_> {
    fn as_raw(&self) -> RawEvent<'_> {
        RawEvent {
            id: self.id.field(),
            kind: self.kind.field(),
            sku: self.sku.field(),
            location: self.location.field(),
            qty: self.qty.0,
            at: self.at.field(),
        }
    }
}

struct LooseStr<'a>(Field<Cow<'a, str>>);
struct LooseInt(Field<i64>);

impl Default for LooseStr<'_> {
    fn default() -> Self {
        LooseStr(Field::Missing)
    }
}
impl Default for LooseInt {
    fn default() -> Self {
        LooseInt(Field::Missing)
    }
}

impl LooseStr<'_> {
    fn field(&self) -> Field<&str> {
        match &self.0 {
            Field::Missing => Field::Missing,
            Field::WrongType => Field::WrongType,
            Field::Value(s) => Field::Value(s.as_ref()),
        }
    }
}

/// Drains whatever compound value a wrong-typed field holds, so parsing can go on.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

macro_rules! wrong_type_otherwise {
    ($out:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($out(Field::WrongType))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($out(Field::WrongType))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($out(Field::Missing))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            skip_map(map)?;
            Ok($out(Field::WrongType))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            skip_seq(seq)?;
            Ok($out(Field::WrongType))
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for LooseStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(LooseStr(Field::Value(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(LooseStr(Field::Value(Cow::Owned(s.to_owned()))))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LooseStr(Field::WrongType))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LooseStr(Field::WrongType))
            }
            wrong_type_otherwise!(LooseStr);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for LooseInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseInt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(LooseInt(Field::Value(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(LooseInt(i64::try_from(n).map_or(Field::WrongType, Field::Value)))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(LooseInt(Field::WrongType))
            }
            wrong_type_otherwise!(LooseInt);
        }
        d.deserialize_any(V)
    }
}

/// One stock event as a device sends it (a JSON array of these, or one per NDJSON line): its
/// schema for `/openapi.json`. The body is read field by field instead (`decode`), so that a
/// field of the wrong type rejects one event, not the request.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EventIn {
    /// Idempotency key, unique forever: 1 to 128 printable ASCII characters without spaces.
    #[schema(min_length = 1, max_length = 128, pattern = "^[!-~]+$")]
    id: String,
    #[schema(rename = "type", pattern = "^(sale|return|receipt|adjust|count)$")]
    kind: String,
    #[schema(min_length = 1, max_length = 64)]
    sku: String,
    #[schema(min_length = 1, max_length = 64)]
    location: String,
    /// sale, return, receipt: > 0; adjust: signed, not 0; count: >= 0.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    qty: i64,
    /// RFC 3339 time when it happened at the source.
    at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_the_wrong_type_are_kept_as_such() {
        let body = br#"[{"id":"a","type":"sale","sku":"S","location":"l","qty":"3","extra":{"x":[1]}},
                        {"id":5,"qty":1.5,"at":null},{"id":"b\u0041","qty":18446744073709551615}]"#;
        let w = parse_body(body, false).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].qty.0, Field::WrongType);
        assert_eq!(w[0].id.field(), Field::Value("a"));
        assert_eq!(w[1].id.field(), Field::WrongType);
        assert_eq!(w[1].qty.0, Field::WrongType);
        assert_eq!(w[1].at.field(), Field::Missing);
        assert_eq!(w[2].id.field(), Field::Value("bA"));
        assert_eq!(w[2].qty.0, Field::WrongType);
    }

    #[test]
    fn a_body_that_does_not_parse_is_refused_whole() {
        for (body, nd) in [
            (&b"[{\"id\":\"a\"},"[..], false),
            (b"{\"id\":\"a\"}", false),
            (b"[[1,2]]", false),
            (b"{\"id\":\"a\"}\n[1]\n", true),
            (b"{\"id\":\"a\"}\nnot json\n", true),
            (b"[{\"id\":\"a\",\"id\":\"b\"}]", false),
        ] {
            assert!(parse_body(body, nd).is_err(), "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(parse_body(b"{\"id\":\"a\"}\n\n  \n{\"id\":\"b\"}", true).unwrap().len(), 2);
    }
}
