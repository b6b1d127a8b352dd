//! The element's views in headless Chromium: mount into a fresh node, feed it state, let the
//! reactive system settle, assert on the shadow DOM.

use leptos::task::tick;
use shelfcast_element::display::{shown, Failure, Hold, Link, Shown};
use shelfcast_element::testing::{publish, set_link};
use shelfcast_element::ShelfcastElement;
use shelfcast_protocol::{PublicPosition, Status};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{HtmlElement, ShadowRoot, ShadowRootInit, ShadowRootMode};

wasm_bindgen_test_configure!(run_in_browser);

/// A hub address the browser cannot even parse: no stream ever opens, so only what a test
/// publishes reaches the view, and reservations fail at once.
fn hub(name: &str) -> String {
    format!("http://[{name}")
}

struct Mounted {
    host: HtmlElement,
    root: ShadowRoot,
    element: Option<ShelfcastElement>,
}

impl Mounted {
    fn text(&self) -> String {
        self.root.text_content().unwrap_or_default().replace(char::is_whitespace, " ")
    }

    fn query(&self, selector: &str) -> Option<web_sys::Element> {
        self.root.query_selector(selector).unwrap()
    }

    fn set(&self, name: &str, value: &str) {
        self.element.as_ref().unwrap().attribute_changed(name.into(), Some(value.into()));
    }
}

async fn mount(attrs: &[(&str, &str)]) -> Mounted {
    let doc = web_sys::window().unwrap().document().unwrap();
    let host: HtmlElement = doc.create_element("div").unwrap().unchecked_into();
    doc.body().unwrap().append_child(&host).unwrap();
    let root = host.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open)).unwrap();
    let obj = js_sys::Object::new();
    for (k, v) in attrs {
        js_sys::Reflect::set(&obj, &(*k).into(), &(*v).into()).unwrap();
    }
    let element = ShelfcastElement::new(host.clone(), root.clone(), "http://unused".into(), obj.into()).unwrap();
    settle().await;
    Mounted { host, root, element: Some(element) }
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

/// Lets queued timers (the stream registry works on the next tick) and effects run.
async fn settle() {
    sleep(5).await;
    tick().await;
}

fn position(sku: &str, location: &str, on_hand: i64, reserved: i64, version: u64) -> String {
    let available = on_hand - reserved;
    format!(
        r#"{{"sku":"{sku}","location":"{location}","on_hand":{on_hand},"reserved":{reserved},"available":{available},"status":"{}","version":{version}}}"#,
        match Status::of(available, 3) {
            Status::InStock => "in_stock",
            Status::LowStock => "low_stock",
            Status::OutOfStock => "out_of_stock",
        }
    )
}

/// A position whose numbers the hub withholds (`--disclose low` or `status`).
fn withheld(sku: &str, location: &str, status: &str, version: u64) -> String {
    format!(
        r#"{{"sku":"{sku}","location":"{location}","on_hand":null,"reserved":null,"available":null,"status":"{status}","version":{version}}}"#
    )
}

async fn live(h: &str) {
    set_link(h, Link::Live);
    settle().await;
}

#[wasm_bindgen_test]
async fn loading_then_in_low_and_out_of_stock() {
    let h = hub("states");
    let m = mount(&[("sku", "SKU-1"), ("location", "berlin"), ("hub", &h), ("locale", "en")]).await;
    assert!(m.text().contains("Checking stock…"), "{}", m.text());
    assert_eq!(m.query(".row").unwrap().get_attribute("aria-busy").as_deref(), Some("true"));
    live(&h).await;
    for (on_hand, reserved, text, class) in [
        (1234, 0, "In stock: 1,234", "in-stock"),
        (7, 5, "Only 2 left", "low-stock"),
        (3, 3, "Out of stock", "out-of-stock"),
        (0, 2, "Out of stock", "out-of-stock"),
    ] {
        publish(&h, &position("SKU-1", "berlin", on_hand, reserved, 1));
        settle().await;
        let row = m.query(".row").unwrap();
        assert!(m.text().contains(text), "{on_hand}/{reserved}: {}", m.text());
        assert!(row.class_name().contains(class), "{}", row.class_name());
        assert_eq!(row.get_attribute("aria-busy").as_deref(), Some("false"));
    }
    assert!(!m.text().contains("-2"), "oversold shows as out of stock, never a negative count");
    assert!(m.text().contains("Live"));
}

/// `--disclose status` (and `low` outside low stock): the hub's status in words, no digit
/// anywhere, in every locale; nothing to reserve out of stock; the change event says `null`.
#[wasm_bindgen_test]
async fn withheld_counts_are_shown_as_the_status_without_a_number() {
    let h = hub("withheld");
    let m = mount(&[("sku", "S"), ("location", "berlin"), ("hub", &h), ("locale", "en"), ("reservable", "")]).await;
    let details = std::rc::Rc::new(std::cell::RefCell::new(Vec::<JsValue>::new()));
    let seen = details.clone();
    let listener = Closure::<dyn Fn(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| seen.borrow_mut().push(e.detail()));
    m.host.add_event_listener_with_callback("shelfcast:change", listener.as_ref().unchecked_ref()).unwrap();
    live(&h).await;
    let card = || m.query(".card").unwrap().text_content().unwrap();
    let blocked = || m.query("button.reserve").expect("a reserve button").get_attribute("aria-disabled");
    for (locale, status, text, class, version) in [
        ("en", "in_stock", "In stock", "in-stock", 1),
        ("en", "low_stock", "Low stock", "low-stock", 2),
        ("de", "in_stock", "Auf Lager", "in-stock", 3),
        ("de", "low_stock", "Geringer Bestand", "low-stock", 4),
        ("fr", "in_stock", "En stock", "in-stock", 5),
        ("fr", "out_of_stock", "Rupture de stock", "out-of-stock", 6),
        ("en", "out_of_stock", "Out of stock", "out-of-stock", 7),
    ] {
        m.set("locale", locale);
        publish(&h, &withheld("S", "berlin", status, version));
        settle().await;
        assert!(card().contains(text), "{locale} {status}: {}", card());
        assert!(!card().chars().any(|c| c.is_ascii_digit()), "{locale} {status}: no digit in {:?}", card());
        assert!(m.query(".row").unwrap().class_name().contains(class));
        let out = (status == "out_of_stock").to_string();
        assert_eq!(blocked().as_deref(), Some(out.as_str()), "{locale} {status}: reservable unless out of stock");
    }
    let last = details.borrow().last().cloned().expect("change events");
    assert!(js_sys::Reflect::get(&last, &"available".into()).unwrap().is_null(), "no count in the event either");
    assert_eq!(js_sys::Reflect::get(&last, &"status".into()).unwrap().as_string().as_deref(), Some("out_of_stock"));
    // `--disclose low` gives the numbers while low: then the count is shown again.
    publish(&h, &position("S", "berlin", 2, 0, 8));
    settle().await;
    assert!(card().contains("Only 2 left"), "{}", card());
}

/// `notify`: "Notify me" only while out of stock (and not while loading), in the element's
/// locale; a click (or Enter on it) fires `shelfcast:notify-request` with the row's position.
#[wasm_bindgen_test]
async fn notify_me_shows_while_out_of_stock_and_asks_the_page() {
    let h = hub("notify");
    let m = mount(&[("sku", "S"), ("locations", "berlin,hamburg"), ("hub", &h), ("locale", "en"), ("notify", "")]).await;
    let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::<(String, String)>::new()));
    let seen = asked.clone();
    let listener = Closure::<dyn Fn(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
        assert!(e.bubbles() && e.composed());
        let field = |name: &str| js_sys::Reflect::get(&e.detail(), &name.into()).unwrap().as_string().unwrap();
        seen.borrow_mut().push((field("sku"), field("location")));
    });
    m.host.add_event_listener_with_callback("shelfcast:notify-request", listener.as_ref().unchecked_ref()).unwrap();
    let button =
        |location: &str| -> HtmlElement { m.query(&format!("[data-position='S@{location}'] button")).expect("a button").unchecked_into() };
    // Shown: its row's button is the notify one, and not hidden (`.off` hides the row's hold part).
    let offered = |location: &str| {
        let b = button(location);
        let part = b.parent_element().unwrap();
        b.class_name() == "notify" && !part.class_name().contains("off") && b.get_attribute("aria-disabled").as_deref() == Some("false")
    };
    assert!(!offered("berlin"), "not while loading");
    live(&h).await;
    publish(&h, &position("S", "berlin", 0, 0, 1));
    publish(&h, &position("S", "hamburg", 4, 0, 2));
    settle().await;
    assert!(offered("berlin"), "offered out of stock");
    assert!(!offered("hamburg"), "not in stock");
    assert!(m.query("[data-position='S@hamburg'] .hold").unwrap().class_name().contains("off"), "nothing shown in stock");
    assert_eq!(button("berlin").text_content().unwrap(), "Notify me");
    button("berlin").click();
    settle().await;
    assert_eq!(*asked.borrow(), [("S".to_string(), "berlin".to_string())]);
    // Withheld counts: the hub's status decides.
    publish(&h, &withheld("S", "hamburg", "out_of_stock", 3));
    publish(&h, &withheld("S", "berlin", "in_stock", 4));
    m.set("locale", "de");
    settle().await;
    assert!(!offered("berlin") && offered("hamburg"));
    assert_eq!(button("hamburg").text_content().unwrap(), "Benachrichtigen");
    m.set("locale", "fr");
    settle().await;
    assert_eq!(button("hamburg").text_content().unwrap(), "M'avertir");
    button("hamburg").click();
    settle().await;
    assert_eq!(asked.borrow().last().unwrap(), &("S".to_string(), "hamburg".to_string()));
    // Without the attribute there is no such button.
    m.set("notify", "false");
    settle().await;
    assert!(m.query("button").is_none());
}

#[wasm_bindgen_test]
async fn status_changes_are_announced_politely() {
    let h = hub("aria");
    let m = mount(&[("sku", "S"), ("location", "berlin"), ("hub", &h), ("locale", "en")]).await;
    live(&h).await;
    publish(&h, &position("S", "berlin", 2, 0, 4));
    settle().await;
    let region = m.query("[aria-live=polite]").expect("a live region");
    assert_eq!(region.text_content().unwrap(), "Low stock", "the status, not the count");
    publish(&h, &position("S", "berlin", 1, 0, 5));
    settle().await;
    assert!(m.text().contains("Only 1 left"));
    assert_eq!(region.text_content().unwrap(), "Low stock", "a new count in the same status says nothing new");
    publish(&h, &position("S", "berlin", 0, 0, 6));
    settle().await;
    assert_eq!(region.text_content().unwrap(), "Out of stock");
}

#[wasm_bindgen_test]
async fn german_and_french_words_and_numbers() {
    let h = hub("locales");
    let m = mount(&[("sku", "S"), ("location", "berlin"), ("hub", &h), ("locale", "de-DE")]).await;
    live(&h).await;
    publish(&h, &position("S", "berlin", 1500, 0, 1));
    settle().await;
    assert!(m.text().contains("Auf Lager: 1.500"), "{}", m.text());
    m.set("locale", "fr");
    publish(&h, &position("S", "berlin", 2, 0, 2));
    settle().await;
    assert!(m.text().contains("Plus que 2 en stock"), "{}", m.text());
    assert_eq!(m.query(".card").unwrap().get_attribute("lang").as_deref(), Some("fr"));
}

#[wasm_bindgen_test]
fn counts_are_written_as_the_browsers_number_format_writes_them() {
    use shelfcast_element::i18n::Locale;
    for locale in [Locale::En, Locale::De, Locale::Fr] {
        for n in [0, 7, 999, 1_000, 1_500, 12_345, 999_999, 1_000_000, 123_456_789, -4_321, i64::MAX] {
            let intl: String = js_sys::Number::from(n as f64).to_locale_string(locale.tag()).into();
            // Beyond 2^53 a JS number is not exact; compare the grouping only.
            let ours = locale.number(n);
            if n.unsigned_abs() < 1 << 53 {
                assert_eq!(ours, intl, "{locale:?} {n}");
            } else {
                assert_eq!(ours.chars().filter(|c| !c.is_ascii_digit()).count(), intl.chars().filter(|c| !c.is_ascii_digit()).count());
            }
        }
    }
}

#[wasm_bindgen_test]
async fn a_store_list_shows_each_location() {
    let h = hub("list");
    let m = mount(&[("sku", "S"), ("locations", "berlin-mitte,hamburg-altona,munich"), ("hub", &h), ("locale", "en")]).await;
    live(&h).await;
    publish(&h, &position("S", "berlin-mitte", 9, 0, 1));
    publish(&h, &position("S", "hamburg-altona", 1, 0, 2));
    settle().await;
    let rows = m.root.query_selector_all(".row").unwrap();
    assert_eq!(rows.length(), 3);
    let text = m.text();
    assert!(text.contains("Berlin Mitte") && text.contains("In stock: 9"), "{text}");
    assert!(text.contains("Hamburg Altona") && text.contains("Only 1 left"), "{text}");
    assert!(text.contains("Munich") && text.contains("Checking stock…"), "{text}");
}

#[wasm_bindgen_test]
async fn reconnecting_marks_the_last_known_values_stale() {
    let h = hub("stale");
    let m = mount(&[("sku", "S"), ("location", "berlin"), ("hub", &h), ("locale", "en")]).await;
    live(&h).await;
    publish(&h, &position("S", "berlin", 9, 0, 1));
    settle().await;
    assert!(!m.query(".row").unwrap().class_name().contains("stale"));
    set_link(&h, Link::Reconnecting);
    settle().await;
    assert!(m.query(".row").unwrap().class_name().contains("stale"));
    assert!(m.text().contains("In stock: 9") && m.text().contains("Reconnecting"), "{}", m.text());
    set_link(&h, Link::Unreachable);
    settle().await;
    assert!(m.query("[role=alert]").unwrap().text_content().unwrap().contains("unavailable"));
}

#[wasm_bindgen_test]
async fn an_invalid_sku_is_a_clear_error_and_an_event() {
    let doc = web_sys::window().unwrap().document().unwrap();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
    let s = seen.clone();
    let on_error = Closure::<dyn FnMut(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
        let code = js_sys::Reflect::get(&e.detail(), &"code".into()).unwrap().as_string();
        *s.borrow_mut() = code;
    });
    doc.add_event_listener_with_callback("shelfcast:error", on_error.as_ref().unchecked_ref()).unwrap();
    let m = mount(&[("sku", "not a sku"), ("location", "berlin"), ("hub", &hub("bad")), ("locale", "en")]).await;
    assert_eq!(m.query("[role=alert]").unwrap().text_content().unwrap(), "This product code is not valid.");
    assert_eq!(seen.borrow().as_deref(), Some("invalid_sku"), "bubbles and crosses the shadow root to document");
    doc.remove_event_listener_with_callback("shelfcast:error", on_error.as_ref().unchecked_ref()).unwrap();
}

#[wasm_bindgen_test]
async fn changes_are_dispatched_as_dom_events() {
    let h = hub("events");
    let m = mount(&[("sku", "S"), ("location", "berlin"), ("hub", &h)]).await;
    let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::<f64>::new()));
    let g = got.clone();
    let listener = Closure::<dyn FnMut(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
        assert!(e.bubbles() && e.composed());
        g.borrow_mut().push(js_sys::Reflect::get(&e.detail(), &"available".into()).unwrap().as_f64().unwrap());
    });
    m.host.add_event_listener_with_callback("shelfcast:change", listener.as_ref().unchecked_ref()).unwrap();
    publish(&h, &position("S", "berlin", 5, 0, 1));
    settle().await;
    publish(&h, &position("S", "berlin", 4, 0, 2));
    settle().await;
    assert_eq!(*got.borrow(), vec![5.0, 4.0]);
}

/// A reservable element in English with 5 in stock at berlin, live; and its Reserve button.
async fn reservable_in_stock(name: &str) -> (String, Mounted, HtmlElement) {
    let h = hub(name);
    let m = mount(&[("sku", "S"), ("location", "berlin"), ("hub", &h), ("locale", "en"), ("reservable", "")]).await;
    live(&h).await;
    publish(&h, &position("S", "berlin", 5, 0, 1));
    settle().await;
    let button: HtmlElement = m.query("button.reserve").unwrap().unchecked_into();
    assert_eq!(button.text_content().unwrap(), "Reserve for pickup");
    (h, m, button)
}

#[wasm_bindgen_test]
async fn a_failed_reservation_rolls_back_and_says_why() {
    let (_, m, button) = reservable_in_stock("rollback").await;
    button.click();
    settle().await;
    // The hub cannot be reached: after the optimistic hold, a rollback with the reason.
    assert!(m.text().contains("In stock: 5"), "the count is back: {}", m.text());
    assert!(m.text().contains("Could not reserve: the stock service cannot be reached"), "{}", m.text());
    assert!(m.query("button.reserve").is_some(), "the shopper can try again");
}

#[wasm_bindgen_test]
async fn a_new_locale_rewords_the_rows_in_place_and_another_location_reassigns_them() {
    let (_, m, button) = reservable_in_stock("inplace").await;
    m.set("locale", "de");
    settle().await;
    assert!(m.root.contains(Some(&*button)), "the same button: a shopper's focus on it stays");
    assert_eq!(button.text_content().unwrap(), "Zur Abholung reservieren");
    assert!(m.text().contains("Auf Lager: 5"), "{}", m.text());
    assert_eq!(m.query(".row").unwrap().get_attribute("data-position").as_deref(), Some("S@berlin"));
    m.set("location", "hamburg");
    settle().await;
    // The row now stands for hamburg, so its buttons act there.
    assert_eq!(m.query(".row").unwrap().get_attribute("data-position").as_deref(), Some("S@hamburg"));
    assert!(m.text().contains("Bestand wird geprüft…"), "{}", m.text());
}

#[wasm_bindgen_test]
async fn removing_the_element_unmounts_its_view() {
    let h = hub("unmount");
    let mut m = mount(&[("sku", "S"), ("location", "berlin"), ("hub", &h)]).await;
    assert!(m.query(".row").is_some());
    drop(m.element.take());
    settle().await;
    assert!(m.query(".row").is_none());
}

// The display rules behind the views, case by case.

fn pos(available: i64, version: u64) -> PublicPosition {
    PublicPosition {
        sku: "S".parse().unwrap(),
        location: "l".parse().unwrap(),
        on_hand: Some(available),
        reserved: Some(0),
        available: Some(available),
        status: Status::of(available, 3),
        version,
    }
}

#[wasm_bindgen_test]
fn optimistic_holds_count_until_the_hub_shows_them() {
    let p = pos(5, 10);
    assert_eq!(shown(None, &Hold::None, Link::Live, 3), Shown::Loading);
    let pending = Hold::Pending { qty: 1, seen_version: 10 };
    assert_eq!(shown(Some(&p), &pending, Link::Live, 3), Shown::Stock { status: Status::InStock, available: Some(4), stale: false });
    let held = Hold::Held { id: "r".into(), token: "t".into(), qty: 1, expires_at: 0.0, lapses: 0.0, seen_version: 10 };
    assert_eq!(held.unreflected(10), 1, "the stream has not shown the hold yet");
    assert_eq!(held.unreflected(11), 0, "a newer position includes it: never subtract twice");
    let failed = Hold::Failed { reason: Failure::SoldOut };
    assert_eq!(shown(Some(&p), &failed, Link::Reconnecting, 3), Shown::Stock { status: Status::InStock, available: Some(5), stale: true });
    let one_left = pos(1, 3);
    assert_eq!(
        shown(Some(&one_left), &Hold::Pending { qty: 1, seen_version: 3 }, Link::Live, 3),
        Shown::Stock { status: Status::OutOfStock, available: Some(0), stale: false }
    );
}
