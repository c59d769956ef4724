//! Measures importing postings into the store: `cargo run --release -p concordat-store
//! --example import_bench -- DATABASE_URL [ROWS]`. Rows are generated in memory (so only the
//! store is timed), in batches of 5,000 as the CLI sends them.

use std::time::Instant;

use concordat_store::{
    Actor, AgreementLoad, ImportHeader, ImportStart, ImportSummaryRow, PostingRow, open,
};

const BATCH: usize = 5_000;

fn posting(i: usize) -> PostingRow {
    let period = (i % 12) as i64 + 1;
    PostingRow {
        source_line: i as i64 + 2,
        date: format!("2024-{:02}-15", (period + 2) % 12 + 1),
        year_start: 2024,
        period,
        fund: if i.is_multiple_of(3) { "bcf" } else { "ibcf" }.to_string(),
        service_line: format!("SL{:02}", i % 40),
        partner: Some(
            if i.is_multiple_of(2) {
                "council"
            } else {
                "icb"
            }
            .to_string(),
        ),
        locality: Some(format!("LOC{}", i % 5)),
        cost_centre: Some(format!("CC{:05}", i % 700)),
        subjective: Some(format!("{}", 50_000 + i % 300)),
        supplier: Some(format!("Supplier {}", i % 2_000)),
        reference: format!("INV-{i:09}"),
        description: Some(format!("Care package week {}", i % 52)),
        amount_pence: (i as i64 * 7_919) % 500_000 - 50_000,
        corrects_reference: None,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .expect("usage: import_bench DATABASE_URL [ROWS]");
    let rows: usize = args.get(2).map_or(1_000_000, |r| r.parse().expect("ROWS"));
    let store = open(url).await.expect("open");
    let actor = Actor::new("bench");
    let key = "bench-partnership";
    store
        .load_agreement(
            &actor,
            "2025-04-01T09:00:00Z",
            AgreementLoad {
                partnership_key: key.into(),
                title: "Bench".into(),
                status: "signed".into(),
                source_path: "bench.toml".into(),
                source_text: "bench".into(),
                source_sha256: "bench".into(),
                model_json: serde_json::json!({}),
                partners: vec![],
                authority: None,
            },
        )
        .await
        .expect("load agreement");
    let generated: Vec<PostingRow> = (0..rows).map(posting).collect();
    let control_total_pence: i64 = generated.iter().map(|p| p.amount_pence).sum();

    let started = Instant::now();
    let header = ImportHeader {
        partnership_key: key.into(),
        file_name: "bench.csv".into(),
        file_sha256: format!("{rows}-{}", started.elapsed().as_nanos()),
        mapping_sha256: "m".into(),
    };
    let ImportStart::Session(mut session) = store
        .begin_import(&actor, "2025-04-02T09:00:00Z", header)
        .await
        .expect("begin")
    else {
        panic!("already imported");
    };
    for batch in generated.chunks(BATCH) {
        session.add(batch).await.expect("add");
    }
    let outcome = session
        .commit(ImportSummaryRow {
            rows: rows as i64,
            control_total_pence,
        })
        .await
        .expect("commit");
    let elapsed = started.elapsed();
    println!(
        "{}: {} postings in {:.2} s ({:.0} postings/s), {} totals rows",
        store.backend(),
        outcome.rows,
        elapsed.as_secs_f64(),
        outcome.rows as f64 / elapsed.as_secs_f64(),
        store
            .ledger_totals(key, None, 2024)
            .await
            .expect("totals")
            .len()
    );
}
