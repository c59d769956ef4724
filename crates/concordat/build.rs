//! Embeds the example agreements so `concordat demo` runs from anywhere.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agreements");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut code = String::from("pub const EXAMPLES: &[(&str, &str)] = &[\n");
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let abs = f.canonicalize().unwrap();
        println!("cargo::rerun-if-changed={}", abs.display());
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("examples.rs");
    std::fs::write(out, code).unwrap();
}
