//! `concordat demo`: a fresh embedded database with the example agreements loaded.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use concordat_io::parse_agreement;
use concordat_store::Actor;

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

pub async fn run(database_file: &Path) -> Result<ExitCode> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = database_file.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot replace {}", database_file.display()));
            }
        }
    }
    let url = format!("sqlite:{}", database_file.display());
    let store = concordat_store::open(&url).await?;
    let actor = Actor {
        name: "demo".to_string(),
    };
    let today = crate::today();
    println!(
        "Concordat demo: {} example agreements into {}\n",
        EXAMPLES.len(),
        database_file.display()
    );
    for (name, text) in EXAMPLES {
        let file = parse_agreement(&format!("examples/agreements/{name}"), text.to_string());
        let Some(agreement) = file.agreement.clone().filter(|_| file.is_valid()) else {
            for f in file.errors() {
                eprintln!("{}", f.render(&file.name));
            }
            bail!("the embedded example {name} is not valid");
        };
        let load = crate::agreement_load(&file, &agreement)?;
        let outcome = store
            .load_agreement(&actor, &jiff::Timestamp::now().to_string(), load)
            .await?;
        println!("{}", crate::describe_outcome(&agreement.id, &outcome));
        println!("{}", crate::summary::render(&agreement, today));
    }
    let report = store.verify_audit().await?;
    println!(
        "Audit chain: {} records, {}.",
        report.records_checked,
        if report.first_mismatch.is_none() {
            "intact"
        } else {
            "BROKEN"
        }
    );
    println!("\nTry: concordat agreement list --database {url}");
    Ok(ExitCode::SUCCESS)
}
