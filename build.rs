//! Minifies `src/style.css` into the element (comments and spaces out): the sheet is part of
//! the download, and the readable source stays readable.

fn main() {
    println!("cargo:rerun-if-changed=src/style.css");
    let css = std::fs::read_to_string("src/style.css").expect("src/style.css");
    let mut out = String::with_capacity(css.len());
    let mut rest = css.as_str();
    // Comments out.
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..].find("*/").map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    // Runs of white space to one space, then none beside punctuation that needs none.
    let words: Vec<&str> = out.split_ascii_whitespace().collect();
    let mut css = words.join(" ");
    for p in ["{", "}", ";", ",", ">", ":"] {
        css = css.replace(&format!(" {p}"), p).replace(&format!("{p} "), p);
    }
    let css = css.replace(";}", "}");
    std::fs::write(std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("style.css"), css).unwrap();
}
