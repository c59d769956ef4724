//! Payments of contributions and funding transfers: what has been paid, to set against what
//! the agreement's schedules say has fallen due.

use serde_json::{Value, json};

use crate::audit::canonical_json;
use crate::db::{Arg, Pool, Row, Tx};
use crate::ledger_store::{db as failed, no_partnership, partnership_exists};
use crate::sql_store::{AuditEntry, Change, CommandResult, check_field};
use crate::{Actor, PaymentKind, PaymentRow, StoreError, StoredPayment};

fn check_date(text: &str) -> Result<(), StoreError> {
    let ok = text.len() == 10
        && text.as_bytes()[4] == b'-'
        && text.as_bytes()[7] == b'-'
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "the payment date {text:?} is not an ISO date (YYYY-MM-DD)"
        )))
    }
}

pub(crate) async fn apply_record_payment(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    p: PaymentRow,
    doing: &str,
) -> Result<Change, StoreError> {
    let key = p.partnership_key.as_str();
    check_field("payment reference", &p.reference)?;
    check_field("item paid", &p.item)?;
    check_field("partner who paid", &p.partner)?;
    check_date(&p.paid_on)?;
    if p.amount_pence <= 0 {
        return Err(StoreError::Invalid(format!(
            "payment {:?} is for {} pence: a payment received is more than zero",
            p.reference, p.amount_pence
        )));
    }
    if !(1900..=9998).contains(&p.year_start) {
        return Err(StoreError::Invalid(format!(
            "{} is not the start of a financial year",
            p.year_start
        )));
    }
    if !partnership_exists(tx, key).await.map_err(failed(doing))? {
        return Err(no_partnership(key));
    }
    let written = tx
        .execute(
            "INSERT INTO payment (partnership_key, reference, kind, item, partner, year_start, \
                 paid_on, amount_pence, recorded_at, recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (partnership_key, reference) DO NOTHING",
            &[
                Arg::Text(key),
                Arg::Text(&p.reference),
                Arg::Text(p.kind.as_str()),
                Arg::Text(&p.item),
                Arg::Text(&p.partner),
                Arg::Int(p.year_start),
                Arg::Text(&p.paid_on),
                Arg::Int(p.amount_pence),
                Arg::Text(at),
                Arg::Text(&actor.name),
            ],
        )
        .await
        .map_err(failed(doing))?;
    if written == 0 {
        return Err(StoreError::Invalid(format!(
            "a payment with reference {:?} is already recorded in {key}",
            p.reference
        )));
    }
    Ok(Change {
        result: CommandResult::Done,
        audit: Some(AuditEntry {
            action: "payment.record",
            entity: format!("payment:{key}:{}", p.reference),
            before_json: None,
            after_json: Some(canonical_json(
                &serde_json::to_value(&p).unwrap_or(Value::Null),
            )),
        }),
    })
}

fn stored_payment(row: &Row) -> Result<StoredPayment, sqlx::Error> {
    let kind = match row.text("kind")?.as_str() {
        "contribution" => PaymentKind::Contribution,
        "transfer" => PaymentKind::Transfer,
        other => {
            return Err(sqlx::Error::Decode(
                format!("payment kind {other:?} is neither contribution nor transfer").into(),
            ));
        }
    };
    Ok(StoredPayment {
        payment: PaymentRow {
            partnership_key: row.text("partnership_key")?,
            reference: row.text("reference")?,
            kind,
            item: row.text("item")?,
            partner: row.text("partner")?,
            year_start: row.int("year_start")?,
            paid_on: row.text("paid_on")?,
            amount_pence: row.int("amount_pence")?,
        },
        recorded_at: row.text("recorded_at")?,
        recorded_by: row.text("recorded_by")?,
    })
}

pub(crate) async fn payments(
    pool: &Pool,
    key: &str,
    year_start: i64,
) -> Result<Vec<StoredPayment>, StoreError> {
    pool.fetch_all(
        "SELECT partnership_key, reference, kind, item, partner, year_start, paid_on, \
             amount_pence, recorded_at, recorded_by \
         FROM payment WHERE partnership_key = $1 AND year_start = $2 \
             AND reversed_at IS NULL \
         ORDER BY paid_on, reference",
        &[Arg::Text(key), Arg::Int(year_start)],
    )
    .await
    .and_then(|rows| rows.iter().map(stored_payment).collect())
    .map_err(StoreError::doing(format!("read the payments of {key}")))
}

pub(crate) async fn apply_reverse_payment(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    key: &str,
    reference: &str,
    reason: &str,
    doing: &str,
) -> Result<Change, StoreError> {
    check_field("reason", reason)?;
    let before = tx
        .fetch_optional(
            "SELECT partnership_key, reference, kind, item, partner, year_start, paid_on, \
                 amount_pence, recorded_at, recorded_by \
             FROM payment WHERE partnership_key = $1 AND reference = $2 \
                 AND reversed_at IS NULL",
            &[Arg::Text(key), Arg::Text(reference)],
        )
        .await
        .map_err(failed(doing))?
        .as_ref()
        .map(stored_payment)
        .transpose()
        .map_err(failed(doing))?
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "there is no payment {reference:?} in {key} to reverse (or it is reversed already)"
            ))
        })?;
    tx.execute(
        "UPDATE payment SET reversed_at = $3, reversed_by = $4, reversal_reason = $5 \
         WHERE partnership_key = $1 AND reference = $2",
        &[
            Arg::Text(key),
            Arg::Text(reference),
            Arg::Text(at),
            Arg::Text(&actor.name),
            Arg::Text(reason),
        ],
    )
    .await
    .map_err(failed(doing))?;
    Ok(Change {
        result: CommandResult::Done,
        audit: Some(AuditEntry {
            action: "payment.reverse",
            entity: format!("payment:{key}:{reference}"),
            before_json: Some(canonical_json(
                &serde_json::to_value(&before.payment).unwrap_or(Value::Null),
            )),
            after_json: Some(canonical_json(&json!({"reversed": true, "reason": reason}))),
        }),
    })
}
