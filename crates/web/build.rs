//! Builds the stylesheet from GOV.UK Frontend with npm and Sass, so nothing third-party is
//! committed: `frontend/package.json` and its lock pin the versions, `npm ci` fetches them
//! into the build folder, and Sass compiles `frontend/app.scss` (Arial, no crown, assets
//! under `/assets/`). The CSS and GOV.UK Frontend's script are then embedded in the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let source = manifest.join("frontend");
    for file in ["package.json", "package-lock.json", ".npmrc", "app.scss"] {
        println!("cargo:rerun-if-changed=frontend/{file}");
    }
    let work = out.join("frontend");
    std::fs::create_dir_all(&work).expect("create the frontend build folder");
    let lock = std::fs::read(source.join("package-lock.json")).expect("frontend/package-lock.json");
    let installed_lock = work.join("installed-lock.json");
    let up_to_date = work.join("node_modules").is_dir()
        && std::fs::read(&installed_lock).is_ok_and(|l| l == lock);
    for file in ["package.json", "package-lock.json", ".npmrc", "app.scss"] {
        std::fs::copy(source.join(file), work.join(file)).expect("copy the frontend sources");
    }
    if !up_to_date {
        run(
            Command::new(npm())
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(&work),
            "npm ci",
        );
        std::fs::write(&installed_lock, &lock).expect("note the installed lock");
    }
    let sass = work.join("node_modules/sass/sass.js");
    run(
        Command::new("node")
            .arg(&sass)
            .args([
                "--pkg-importer=node",
                "--style=compressed",
                "--no-source-map",
                "--quiet-deps",
                "app.scss",
            ])
            .arg(out.join("app.css"))
            .current_dir(&work),
        "sass",
    );
    let govuk = work.join("node_modules/govuk-frontend/dist/govuk");
    std::fs::copy(
        govuk.join("govuk-frontend.min.js"),
        out.join("govuk-frontend.min.js"),
    )
    .expect("copy GOV.UK Frontend's script");
    // The accessibility checks inject axe-core into the pages under test.
    let axe = work.join("node_modules/axe-core/axe.min.js");
    println!("cargo:rustc-env=CONCORDAT_AXE_JS={}", axe.display());
}

fn npm() -> &'static str {
    if cfg!(windows) { "npm.cmd" } else { "npm" }
}

fn run(command: &mut Command, what: &str) {
    let status = command.status().unwrap_or_else(|e| {
        panic!(
            "concordat-web builds its stylesheet with Node and npm, and could not run {what}: {e}. Install Node.js 20 or later with npm (see the README)."
        )
    });
    assert!(
        status.success(),
        "{what} failed ({status}) in {}",
        display(command)
    );
}

fn display(command: &Command) -> String {
    command
        .get_current_dir()
        .map(Path::display)
        .map(|d| d.to_string())
        .unwrap_or_default()
}
