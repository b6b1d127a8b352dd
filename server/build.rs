//! Embeds the element's built files (pkg/, from scripts/build-element.sh) into the hub binary,
//! so one binary serves `/embed/shelfcast.js`. Without a build the routes say so in JSON.

use std::path::Path;

const FILES: [(&str, &str); 5] = [
    ("shelfcast.js", "embed.js"),
    ("index.js", "index.js"),
    ("element.js", "element.js"),
    ("dist/shelfcast_element.js", "dist/shelfcast_element.js"),
    ("dist/shelfcast_element_bg.wasm", "dist/shelfcast_element_bg.wasm"),
];

fn main() {
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pkg");
    let mut entries = String::new();
    let built = FILES.iter().all(|(_, f)| pkg.join(f).exists());
    for (route, file) in FILES {
        let path = pkg.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        if built {
            let abs = path.canonicalize().expect("path").display().to_string();
            entries.push_str(&format!("    ({route:?}, include_bytes!({abs:?})),\n"));
        }
    }
    println!("cargo:rerun-if-changed={}", pkg.join("dist").display());
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("embed.rs");
    std::fs::write(out, format!("pub const FILES: &[(&str, &[u8])] = &[\n{entries}];\n")).expect("write embed.rs");
}
