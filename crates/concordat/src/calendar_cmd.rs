//! `concordat calendar`: what an agreement promises with a date, and what its records do
//! (meetings, dispute steps, complaints, risk reviews, notice), as a table or an iCalendar
//! file to import into a calendar application.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use concordat_core::FinancialYear;
use jiff::civil::Date;

use crate::{DatabaseArgs, open, today};

#[derive(clap::Args)]
pub(crate) struct CalendarArgs {
    /// The agreement's id.
    #[arg(long)]
    agreement: String,
    /// The first financial year, e.g. 2024/25.
    #[arg(long)]
    from: FinancialYear,
    /// The last financial year (default: the first).
    #[arg(long)]
    to: Option<FinancialYear>,
    /// `table` to read, `ics` to import into a calendar.
    #[arg(long, default_value = "table", value_parser = ["table", "ics"])]
    format: String,
    /// Where to write the .ics file (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// The day to judge what is overdue by, in the table (YYYY-MM-DD); today by default.
    #[arg(long)]
    as_at: Option<Date>,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(crate) async fn calendar_cmd(args: CalendarArgs) -> Result<ExitCode> {
    let store = open(&args.db).await?;
    let agreement =
        concordat_app::finance::stored_agreement(store.as_ref(), &args.agreement).await?;
    let to = args.to.unwrap_or(args.from);
    let items =
        concordat_app::governance::calendar(store.as_ref(), &agreement, args.from, to).await?;
    match args.format.as_str() {
        "ics" => {
            let stamp = jiff::Timestamp::now()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string();
            let ics = concordat_report::render_ics(&agreement.id, &agreement.title, &items, &stamp);
            match &args.output {
                Some(path) => {
                    std::fs::write(path, ics)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    outln!("wrote {} ({} events)", path.display(), items.len());
                }
                None => out!("{ics}"),
            }
        }
        _ => {
            if items.is_empty() {
                outln!(
                    "{} has no dated obligations from {} to {to}",
                    agreement.id,
                    args.from
                );
            }
            let as_at = args.as_at.unwrap_or_else(today);
            for o in &items {
                // Open records past their date (a dispute step, a complaint, a risk review)
                // are what someone has to act on.
                let overdue = if o.overdue(as_at) { "  [overdue]" } else { "" };
                outln!("{}  {}  ({}){overdue}", o.due, o.title, o.basis);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
