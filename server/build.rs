//! Embeds the element's built files (pkg/, from scripts/build-element.sh) and the console's
//! (console/dist/, from scripts/build-console.sh) into the hub binary, so one binary serves
//! `/embed/shelfcast.js` and `/console/`. Each file is embedded as it is and compressed
//! once here, as small as each format allows (brotli at its best quality, gzip by Zopfli: the
//! same format any browser reads, some 5% smaller than level 9), so the hub never compresses
//! them per request. Without a build the routes say so in JSON.

use std::path::Path;

// As scripts/build-element.sh made them: shelfcast.js is pkg/embed.js with the loaders and the
// glue bundled (what the script tag downloads, with the wasm); the others are the same modules
// one by one, minified, and stores.js, the second module some elements load when they need it.
const FILES: [(&str, &str); 6] = [
    ("shelfcast.js", "dist/embed/shelfcast.js"),
    ("index.js", "dist/embed/index.js"),
    ("element.js", "dist/embed/element.js"),
    ("stores.js", "dist/embed/stores.js"),
    ("dist/shelfcast_element.js", "dist/shelfcast_element.js"),
    ("dist/shelfcast_element_bg.wasm", "dist/shelfcast_element_bg.wasm"),
];

// As scripts/build-console.sh made them.
const CONSOLE: [(&str, &str); 4] =
    [("index.html", "index.html"), ("console.css", "console.css"), ("console.js", "console.js"), ("console_bg.wasm", "console_bg.wasm")];

fn main() {
    // Read when the script runs, not when it was compiled: a target directory shared by two
    // checkouts runs one compiled script for both.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("..");
    embed(&root.join("pkg"), &FILES, "embed.rs");
    embed(&root.join("console/dist"), &CONSOLE, "console.rs");
}

/// Writes `OUT_DIR/<list>`: the files of `dir` (all of them, or none if any is missing).
fn embed(dir: &Path, files: &[(&str, &str)], list: &str) {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let mut entries = String::new();
    let built = files.iter().all(|(_, f)| dir.join(f).exists());
    for &(route, file) in files {
        let path = dir.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        if built {
            let body = std::fs::read(&path).expect("read a built file");
            let stem = format!("{list}-{}", file.replace('/', "_"));
            let (gz, br) = (out.join(format!("{stem}.gz")), out.join(format!("{stem}.br")));
            std::fs::write(&gz, gzip(&body)).expect("write gzip");
            std::fs::write(&br, brotli(&body)).expect("write brotli");
            let abs = path.canonicalize().expect("path").display().to_string();
            entries.push_str(&format!(
                "    Built {{ route: {route:?}, identity: include_bytes!({abs:?}), gzip: include_bytes!({:?}), br: include_bytes!({:?}) }},\n",
                gz.display().to_string(),
                br.display().to_string()
            ));
        }
    }
    println!("cargo:rerun-if-changed={}", dir.display());
    std::fs::write(out.join(list), format!("pub const FILES: &[Built] = &[\n{entries}];\n")).expect("write a list of files");
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    zopfli::compress(zopfli::Options::default(), zopfli::Format::Gzip, body, &mut out).expect("gzip");
    out
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &body[..], &mut out, &params).expect("brotli");
    out
}
