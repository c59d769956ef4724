//! `concordat payment` and `concordat schedule`: payments of contributions and funding
//! transfers, set against what the agreement's instalment schedules say has fallen due.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use concordat_core::agreement::{Agreement, Instalments};
use concordat_core::instalments::{Instalment, paid_and_due, schedule, transfer_schedule};
use concordat_core::{FinancialYear, Money};
use concordat_store::{PaymentKind, PaymentRow, StoredPayment};
use jiff::civil::Date;

use crate::{DatabaseArgs, actor, finance, now, open};

#[derive(Subcommand)]
pub(crate) enum PaymentCommand {
    /// Record a payment received: a partner's contribution to a fund, or a funding transfer.
    Record {
        #[arg(long)]
        agreement: String,
        /// A contribution to this fund (give --partner, who paid).
        #[arg(
            long,
            conflicts_with = "transfer",
            required_unless_present = "transfer"
        )]
        fund: Option<String>,
        /// A payment of this funding transfer (the payer is the transfer's `from`).
        #[arg(long)]
        transfer: Option<String>,
        /// The partner who paid a contribution.
        #[arg(long)]
        partner: Option<String>,
        /// The financial year it is for, e.g. 2024/25.
        #[arg(long)]
        year: FinancialYear,
        /// The day it was paid (YYYY-MM-DD).
        #[arg(long)]
        paid_on: Date,
        #[arg(long, allow_hyphen_values = true)]
        amount: Money,
        /// The remittance or payment reference; unique in the partnership.
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Reverse a payment recorded in error: it stops counting, and stays on record with who
    /// reversed it, when and why.
    Reverse {
        #[arg(long)]
        agreement: String,
        /// The payment's reference.
        #[arg(long)]
        reference: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The payments recorded for a year (reversed ones left out).
    List {
        #[arg(long)]
        agreement: String,
        #[arg(long)]
        year: FinancialYear,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub(crate) async fn payment_cmd(command: PaymentCommand) -> Result<ExitCode> {
    match command {
        PaymentCommand::Record {
            agreement,
            fund,
            transfer,
            partner,
            year,
            paid_on,
            amount,
            reference,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            if amount.pence() <= 0 {
                bail!("--amount {amount}: a payment received is more than zero");
            }
            let (kind, item, payer) = match (fund, transfer) {
                (Some(fund_id), _) => {
                    let fund = finance::fund(&agreement, &fund_id)?;
                    let Some(partner) = partner else {
                        bail!("--partner: say which partner paid the contribution");
                    };
                    finance::check_partner(&agreement, &partner)?;
                    if !fund
                        .contributions
                        .iter()
                        .any(|c| c.partner == partner && c.year == year)
                    {
                        bail!(
                            "the agreement has no {year} contribution from '{partner}' to fund '{fund_id}'"
                        );
                    }
                    (PaymentKind::Contribution, fund_id, partner)
                }
                (None, Some(id)) => {
                    let Some(t) = agreement.transfers.iter().find(|t| t.id == id) else {
                        bail!(
                            "agreement '{}' has no transfer '{id}'; its transfers are: {}",
                            agreement.id,
                            agreement
                                .transfers
                                .iter()
                                .map(|t| t.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    };
                    if let Some(p) = &partner
                        && *p != t.from
                    {
                        bail!("transfer '{id}' is paid by '{}', not '{p}'", t.from);
                    }
                    if let Some(for_year) = t.year
                        && for_year != year
                    {
                        bail!("transfer '{id}' is for {for_year}, not {year}");
                    }
                    (PaymentKind::Transfer, id, t.from.clone())
                }
                (None, None) => bail!("say --fund FUND (a contribution) or --transfer ID"),
            };
            if paid_on > year.last_day() {
                // A late payment is fine; one dated after the year it is for is flagged.
                eprintln!("note: {paid_on} is after the end of {year}");
            }
            store
                .record_payment(
                    &actor(&db),
                    &now(),
                    PaymentRow {
                        partnership_key: agreement.id.clone(),
                        reference: reference.clone(),
                        kind,
                        item: item.clone(),
                        partner: payer.clone(),
                        year_start: i64::from(year.start_year()),
                        paid_on: paid_on.to_string(),
                        amount_pence: amount.pence(),
                    },
                )
                .await?;
            outln!(
                "payment {reference}: {amount} from {} for {} {item} {year}, paid {paid_on}",
                finance::partner_name(&agreement, &payer),
                kind.as_str()
            );
        }
        PaymentCommand::Reverse {
            agreement,
            reference,
            reason,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            if reason.trim().is_empty() {
                bail!("--reason: say why the payment is reversed, for the record");
            }
            store
                .reverse_payment(&actor(&db), &now(), &agreement.id, &reference, &reason)
                .await?;
            outln!("payment {reference} reversed: it no longer counts as received");
        }
        PaymentCommand::List {
            agreement,
            year,
            db,
        } => {
            let store = open(&db).await?;
            let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
            let list = store
                .payments(&agreement.id, i64::from(year.start_year()))
                .await?;
            if list.is_empty() {
                outln!("No payments recorded for {year}.");
            }
            for StoredPayment { payment: p, .. } in list {
                outln!(
                    "{} {:<16} {:<12} {:<24} {:<36} {:>16}",
                    p.paid_on,
                    p.reference,
                    p.kind.as_str(),
                    p.item,
                    finance::partner_name(&agreement, &p.partner),
                    Money::from_pence(p.amount_pence).to_string()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One thing that falls due: a contribution or a transfer, with its schedule.
struct Due {
    what: String,
    payer: String,
    instalments: Vec<Instalment>,
    paid: Money,
}

fn dues(
    agreement: &Agreement,
    year: FinancialYear,
    payments: &[StoredPayment],
) -> Result<Vec<Due>> {
    let paid = |kind: PaymentKind, item: &str, partner: &str| -> Result<Money> {
        Ok(Money::checked_sum(
            payments
                .iter()
                .map(|p| &p.payment)
                .filter(|p| p.kind == kind && p.item == item && p.partner == partner)
                .map(|p| Money::from_pence(p.amount_pence)),
        )?)
    };
    let mut out = Vec::new();
    for fund in &agreement.funds {
        for c in fund.contributions.iter().filter(|c| c.year == year) {
            out.push(Due {
                what: format!("contribution to {}", fund.id),
                payer: c.partner.clone(),
                instalments: schedule(c.amount, c.instalments.unwrap_or(Instalments::Annual), year),
                paid: paid(PaymentKind::Contribution, &fund.id, &c.partner)?,
            });
        }
    }
    for t in agreement.transfers.iter().filter(|t| t.year == Some(year)) {
        let instalments =
            transfer_schedule(t).unwrap_or_else(|| schedule(t.amount, Instalments::Annual, year));
        out.push(Due {
            what: format!(
                "{} transfer {} to {}{}",
                t.basis.label(),
                t.id,
                finance::partner_name(agreement, &t.to),
                t.via
                    .as_deref()
                    .map(|v| format!(" via {}", finance::partner_name(agreement, v)))
                    .unwrap_or_default()
            ),
            payer: t.from.clone(),
            instalments,
            paid: paid(PaymentKind::Transfer, &t.id, &t.from)?,
        });
    }
    Ok(out)
}

/// `concordat schedule`.
pub(crate) async fn schedule_cmd(
    agreement: String,
    year: FinancialYear,
    as_at: Option<Date>,
    db: DatabaseArgs,
) -> Result<ExitCode> {
    let store = open(&db).await?;
    let agreement = finance::stored_agreement(store.as_ref(), &agreement).await?;
    let as_at = as_at.unwrap_or_else(crate::today);
    let payments: Vec<StoredPayment> = store
        .payments(&agreement.id, i64::from(year.start_year()))
        .await?
        .into_iter()
        .filter(|p| p.payment.paid_on.as_str() <= as_at.to_string().as_str())
        .collect();
    let list = dues(&agreement, year, &payments)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — contributions and funding transfers for {year}, as at {as_at}",
        agreement.title
    );
    if list.is_empty() {
        let _ = writeln!(
            out,
            "The agreement sets no contributions or transfers for {year}."
        );
    }
    for d in &list {
        let position = paid_and_due(&d.instalments, d.paid, as_at)?;
        let total = Money::checked_sum(d.instalments.iter().map(|i| i.amount))?;
        let _ = writeln!(
            out,
            "\n{} — {}: {total} for the year",
            finance::partner_name(&agreement, &d.payer),
            d.what
        );
        for i in &d.instalments {
            let _ = writeln!(
                out,
                "  {} {} {:>16}{}",
                i.due,
                i.period,
                i.amount.to_string(),
                if i.due <= as_at { "  due" } else { "" }
            );
        }
        let _ = writeln!(
            out,
            "  due to date {}, paid {}, {}",
            position.due_to_date,
            position.paid,
            match position.outstanding.pence() {
                0 => "nothing outstanding".to_string(),
                p if p > 0 => format!("{} outstanding", position.outstanding),
                _ => format!(
                    "{} paid in advance",
                    Money::from_pence(-position.outstanding.pence())
                ),
            }
        );
    }
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}
