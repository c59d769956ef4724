//! What the partnership's bodies and officers do: meetings and their papers, decisions (which
//! budget revisions cite and draw down), disputes, complaints, risks and notice served.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::canonical_json;
use crate::db::{Arg, Pool, Row, Tx};
use crate::ledger_store::{db as failed, no_partnership, partnership_exists};
use crate::sql_store::{AuditEntry, Change, CommandResult, check_field};
use crate::{Actor, BudgetRow, StoreError};

/// The kinds of record kept in the `proceeding` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProceedingKind {
    Meeting,
    Dispute,
    Complaint,
    Risk,
    Notice,
}

impl ProceedingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProceedingKind::Meeting => "meeting",
            ProceedingKind::Dispute => "dispute",
            ProceedingKind::Complaint => "complaint",
            ProceedingKind::Risk => "risk",
            ProceedingKind::Notice => "notice",
        }
    }

    fn actions(self) -> (&'static str, &'static str) {
        match self {
            ProceedingKind::Meeting => ("meeting.record", "meeting.update"),
            ProceedingKind::Dispute => ("dispute.raise", "dispute.update"),
            ProceedingKind::Complaint => ("complaint.receive", "complaint.update"),
            ProceedingKind::Risk => ("risk.add", "risk.update"),
            ProceedingKind::Notice => ("notice.serve", "notice.update"),
        }
    }
}

/// A record to store: new (refused if the reference is taken) or a change to one stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProceedingRow {
    pub partnership_key: String,
    pub kind: ProceedingKind,
    pub reference: String,
    pub status: String,
    pub title: String,
    /// ISO date it is filed under.
    pub dated: String,
    pub record: Value,
    /// `true` to add it, `false` to replace the stored one.
    pub new: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredProceeding {
    pub kind: ProceedingKind,
    pub reference: String,
    pub status: String,
    pub title: String,
    pub dated: String,
    pub record: Value,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// A paper for a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperRow {
    pub partnership_key: String,
    pub meeting: String,
    pub title: String,
    pub file_name: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaperInfo {
    pub meeting: String,
    pub paper_id: i64,
    pub title: String,
    pub file_name: String,
    pub media_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub added_at: String,
    pub added_by: String,
}

/// A decision that stands, to record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRow {
    pub partnership_key: String,
    pub reference: String,
    pub decided_on: String,
    pub level: String,
    pub decision_type: String,
    pub title: String,
    pub body: Option<String>,
    pub meeting: Option<String>,
    pub fund: Option<String>,
    pub amount_pence: Option<i64>,
    pub published: bool,
    /// The decision as the domain built it.
    pub record: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDecision {
    #[serde(flatten)]
    pub decision: DecisionRow,
    /// What budget revisions citing it have drawn down so far.
    pub used_increase_pence: i64,
    pub used_decrease_pence: i64,
    pub recorded_at: String,
    pub recorded_by: String,
}

fn kind_of(text: &str) -> Result<ProceedingKind, sqlx::Error> {
    Ok(match text {
        "meeting" => ProceedingKind::Meeting,
        "dispute" => ProceedingKind::Dispute,
        "complaint" => ProceedingKind::Complaint,
        "risk" => ProceedingKind::Risk,
        "notice" => ProceedingKind::Notice,
        other => {
            return Err(sqlx::Error::Decode(
                format!("{other:?} is not a kind of proceeding").into(),
            ));
        }
    })
}

fn json_of(row: &Row, column: &str) -> Result<Value, sqlx::Error> {
    serde_json::from_str(&row.text(column)?).map_err(|e| sqlx::Error::Decode(e.into()))
}

const PROCEEDING_COLUMNS: &str = "kind, reference, status, title, dated, record_json, \
     created_at, created_by, updated_at, updated_by";

fn stored_proceeding(row: &Row) -> Result<StoredProceeding, sqlx::Error> {
    Ok(StoredProceeding {
        kind: kind_of(&row.text("kind")?)?,
        reference: row.text("reference")?,
        status: row.text("status")?,
        title: row.text("title")?,
        dated: row.text("dated")?,
        record: json_of(row, "record_json")?,
        created_at: row.text("created_at")?,
        created_by: row.text("created_by")?,
        updated_at: row.text("updated_at")?,
        updated_by: row.text("updated_by")?,
    })
}

pub(crate) async fn apply_put(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    p: ProceedingRow,
    doing: &str,
) -> Result<Change, StoreError> {
    let key = p.partnership_key.as_str();
    check_field("reference", &p.reference)?;
    check_field("status", &p.status)?;
    check_field("date", &p.dated)?;
    if !partnership_exists(tx, key).await.map_err(failed(doing))? {
        return Err(no_partnership(key));
    }
    let kind = p.kind.as_str();
    let before = tx
        .fetch_optional(
            &format!(
                "SELECT {PROCEEDING_COLUMNS} FROM proceeding \
                 WHERE partnership_key = $1 AND kind = $2 AND reference = $3"
            ),
            &[Arg::Text(key), Arg::Text(kind), Arg::Text(&p.reference)],
        )
        .await
        .map_err(failed(doing))?
        .as_ref()
        .map(stored_proceeding)
        .transpose()
        .map_err(failed(doing))?;
    let record_json = canonical_json(&p.record);
    match (&before, p.new) {
        (Some(_), true) => {
            return Err(StoreError::Invalid(format!(
                "a {kind} with reference {:?} is already recorded in {key}",
                p.reference
            )));
        }
        (None, false) => {
            return Err(StoreError::Invalid(format!(
                "there is no {kind} {:?} in {key} to change",
                p.reference
            )));
        }
        (None, true) => {
            tx.execute(
                "INSERT INTO proceeding (partnership_key, kind, reference, status, title, dated, \
                     record_json, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9)",
                &[
                    Arg::Text(key),
                    Arg::Text(kind),
                    Arg::Text(&p.reference),
                    Arg::Text(&p.status),
                    Arg::Text(&p.title),
                    Arg::Text(&p.dated),
                    Arg::Text(&record_json),
                    Arg::Text(at),
                    Arg::Text(&actor.name),
                ],
            )
            .await
            .map_err(failed(doing))?;
        }
        (Some(_), false) => {
            tx.execute(
                "UPDATE proceeding SET status = $4, title = $5, dated = $6, record_json = $7, \
                     updated_at = $8, updated_by = $9 \
                 WHERE partnership_key = $1 AND kind = $2 AND reference = $3",
                &[
                    Arg::Text(key),
                    Arg::Text(kind),
                    Arg::Text(&p.reference),
                    Arg::Text(&p.status),
                    Arg::Text(&p.title),
                    Arg::Text(&p.dated),
                    Arg::Text(&record_json),
                    Arg::Text(at),
                    Arg::Text(&actor.name),
                ],
            )
            .await
            .map_err(failed(doing))?;
        }
    }
    // Notice served puts the whole agreement in notice, in the same transaction.
    if p.kind == ProceedingKind::Notice {
        tx.execute(
            "UPDATE partnership SET status = $2, updated_at = $3 WHERE partnership_key = $1",
            &[Arg::Text(key), Arg::Text("in notice"), Arg::Text(at)],
        )
        .await
        .map_err(failed(doing))?;
    }
    let (create, update) = p.kind.actions();
    Ok(Change {
        result: CommandResult::Done,
        audit: Some(AuditEntry {
            action: if p.new { create } else { update },
            entity: format!("{kind}:{key}:{}", p.reference),
            before_json: before.map(|b| canonical_json(&b.record)),
            after_json: Some(record_json),
        }),
    })
}

pub(crate) async fn proceedings(
    pool: &Pool,
    key: &str,
    kind: ProceedingKind,
) -> Result<Vec<StoredProceeding>, StoreError> {
    pool.fetch_all(
        &format!(
            "SELECT {PROCEEDING_COLUMNS} FROM proceeding WHERE partnership_key = $1 AND kind = $2"
        ),
        &[Arg::Text(key), Arg::Text(kind.as_str())],
    )
    .await
    .and_then(|rows| rows.iter().map(stored_proceeding).collect())
    .map(|mut list: Vec<StoredProceeding>| {
        // Byte order, not the database's collation.
        list.sort_by(|a, b| (&a.dated, &a.reference).cmp(&(&b.dated, &b.reference)));
        list
    })
    .map_err(StoreError::doing(format!(
        "read the {}s of {key}",
        kind.as_str()
    )))
}

pub(crate) async fn apply_add_paper(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    p: PaperRow,
    doing: &str,
) -> Result<Change, StoreError> {
    let key = p.partnership_key.as_str();
    check_field("paper title", &p.title)?;
    check_field("file name", &p.file_name)?;
    check_field("media type", &p.media_type)?;
    if p.content.is_empty() {
        return Err(StoreError::Invalid(format!(
            "the paper {:?} is empty",
            p.file_name
        )));
    }
    let meeting = tx
        .fetch_optional(
            "SELECT reference FROM proceeding \
             WHERE partnership_key = $1 AND kind = 'meeting' AND reference = $2",
            &[Arg::Text(key), Arg::Text(&p.meeting)],
        )
        .await
        .map_err(failed(doing))?;
    if meeting.is_none() {
        return Err(StoreError::Invalid(format!(
            "there is no meeting {:?} in {key} to add a paper to",
            p.meeting
        )));
    }
    let next = tx
        .fetch_optional(
            "SELECT COALESCE(MAX(paper_id), 0) + 1 AS next FROM meeting_paper \
             WHERE partnership_key = $1 AND meeting = $2",
            &[Arg::Text(key), Arg::Text(&p.meeting)],
        )
        .await
        .map_err(failed(doing))?
        .map(|r| r.int("next"))
        .transpose()
        .map_err(failed(doing))?
        .unwrap_or(1);
    let sha256 = hex(&Sha256::digest(&p.content));
    let size = i64::try_from(p.content.len()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO meeting_paper (partnership_key, meeting, paper_id, title, file_name, \
             media_type, sha256, size_bytes, content, added_at, added_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            Arg::Text(key),
            Arg::Text(&p.meeting),
            Arg::Int(next),
            Arg::Text(&p.title),
            Arg::Text(&p.file_name),
            Arg::Text(&p.media_type),
            Arg::Text(&sha256),
            Arg::Int(size),
            Arg::Bytes(&p.content),
            Arg::Text(at),
            Arg::Text(&actor.name),
        ],
    )
    .await
    .map_err(failed(doing))?;
    Ok(Change {
        result: CommandResult::Revision(next),
        audit: Some(AuditEntry {
            action: "meeting.paper",
            entity: format!("meeting:{key}:{}:paper:{next}", p.meeting),
            before_json: None,
            // The content's checksum, not the content: the audit says what was added.
            after_json: Some(canonical_json(&json!({
                "title": p.title,
                "file_name": p.file_name,
                "media_type": p.media_type,
                "sha256": sha256,
                "size_bytes": size,
            }))),
        }),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const PAPER_COLUMNS: &str =
    "meeting, paper_id, title, file_name, media_type, sha256, size_bytes, added_at, added_by";

fn paper_info(row: &Row) -> Result<PaperInfo, sqlx::Error> {
    Ok(PaperInfo {
        meeting: row.text("meeting")?,
        paper_id: row.int("paper_id")?,
        title: row.text("title")?,
        file_name: row.text("file_name")?,
        media_type: row.text("media_type")?,
        sha256: row.text("sha256")?,
        size_bytes: row.int("size_bytes")?,
        added_at: row.text("added_at")?,
        added_by: row.text("added_by")?,
    })
}

pub(crate) async fn papers(
    pool: &Pool,
    key: &str,
    meeting: &str,
) -> Result<Vec<PaperInfo>, StoreError> {
    pool.fetch_all(
        &format!(
            "SELECT {PAPER_COLUMNS} FROM meeting_paper \
             WHERE partnership_key = $1 AND meeting = $2 ORDER BY paper_id"
        ),
        &[Arg::Text(key), Arg::Text(meeting)],
    )
    .await
    .and_then(|rows| rows.iter().map(paper_info).collect())
    .map_err(StoreError::doing(format!("read the papers of {meeting}")))
}

pub(crate) async fn paper(
    pool: &Pool,
    key: &str,
    meeting: &str,
    paper_id: i64,
) -> Result<Option<(PaperInfo, Vec<u8>)>, StoreError> {
    pool.fetch_optional(
        &format!(
            "SELECT {PAPER_COLUMNS}, content FROM meeting_paper \
             WHERE partnership_key = $1 AND meeting = $2 AND paper_id = $3"
        ),
        &[Arg::Text(key), Arg::Text(meeting), Arg::Int(paper_id)],
    )
    .await
    .and_then(|row| {
        row.map(|r| Ok((paper_info(&r)?, r.bytes("content")?)))
            .transpose()
    })
    .map_err(StoreError::doing(format!(
        "read paper {paper_id} of {meeting}"
    )))
}

const DECISION_COLUMNS: &str = "reference, decided_on, level, decision_type, title, body, \
     meeting, fund, amount_pence, used_increase_pence, used_decrease_pence, published, \
     record_json, recorded_at, recorded_by";

fn stored_decision(row: &Row, key: &str) -> Result<StoredDecision, sqlx::Error> {
    Ok(StoredDecision {
        decision: DecisionRow {
            partnership_key: key.to_string(),
            reference: row.text("reference")?,
            decided_on: row.text("decided_on")?,
            level: row.text("level")?,
            decision_type: row.text("decision_type")?,
            title: row.text("title")?,
            body: row.opt_text("body")?,
            meeting: row.opt_text("meeting")?,
            fund: row.opt_text("fund")?,
            amount_pence: row.opt_int("amount_pence")?,
            published: row.int("published")? != 0,
            record: json_of(row, "record_json")?,
        },
        used_increase_pence: row.int("used_increase_pence")?,
        used_decrease_pence: row.int("used_decrease_pence")?,
        recorded_at: row.text("recorded_at")?,
        recorded_by: row.text("recorded_by")?,
    })
}

/// Records a decision and, in the same transaction, the budget revisions it authorises; one
/// audit record holds both.
pub(crate) async fn apply_record_decision(
    tx: &mut Tx,
    actor: &Actor,
    at: &str,
    d: DecisionRow,
    budgets: Vec<BudgetRow>,
    doing: &str,
) -> Result<Change, StoreError> {
    let key = d.partnership_key.clone();
    check_field("decision reference", &d.reference)?;
    check_field("decision title", &d.title)?;
    check_field("date of the decision", &d.decided_on)?;
    if !partnership_exists(tx, &key).await.map_err(failed(doing))? {
        return Err(no_partnership(&key));
    }
    if d.amount_pence.is_some_and(|a| a < 0) {
        return Err(StoreError::Invalid(
            "a decision cannot authorise a negative amount".into(),
        ));
    }
    let record_json = canonical_json(&d.record);
    let written = tx
        .execute(
            "INSERT INTO decision (partnership_key, reference, decided_on, level, decision_type, \
                 title, body, meeting, fund, amount_pence, published, record_json, recorded_at, \
                 recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (partnership_key, reference) DO NOTHING",
            &[
                Arg::Text(&key),
                Arg::Text(&d.reference),
                Arg::Text(&d.decided_on),
                Arg::Text(&d.level),
                Arg::Text(&d.decision_type),
                Arg::Text(&d.title),
                Arg::OptText(d.body.as_deref()),
                Arg::OptText(d.meeting.as_deref()),
                Arg::OptText(d.fund.as_deref()),
                Arg::OptInt(d.amount_pence),
                Arg::Int(i64::from(d.published)),
                Arg::Text(&record_json),
                Arg::Text(at),
                Arg::Text(&actor.name),
            ],
        )
        .await
        .map_err(failed(doing))?;
    if written == 0 {
        return Err(StoreError::Invalid(format!(
            "a decision with reference {:?} is already in the decision log of {key}",
            d.reference
        )));
    }
    let mut revisions = Vec::new();
    let mut budget_after = Vec::new();
    for mut b in budgets {
        if b.partnership_key != key {
            return Err(StoreError::Invalid(format!(
                "decision {} is in {key}; it cannot authorise a budget of {}",
                d.reference, b.partnership_key
            )));
        }
        b.authority = Some(d.reference.clone());
        let change = crate::ledger_store::apply_set_budget(tx, actor, at, b, doing).await?;
        if let CommandResult::Revision(r) = change.result {
            revisions.push(r);
        }
        if let Some(entry) = change.audit {
            budget_after.push(json!({
                "entity": entry.entity,
                "before": entry.before_json.and_then(|j| serde_json::from_str::<Value>(&j).ok()),
                "after": entry.after_json.and_then(|j| serde_json::from_str::<Value>(&j).ok()),
            }));
        }
    }
    Ok(Change {
        result: CommandResult::Revisions(revisions),
        audit: Some(AuditEntry {
            action: "decision.record",
            entity: format!("decision:{key}:{}", d.reference),
            before_json: None,
            after_json: Some(canonical_json(&json!({
                "decision": d.record,
                "published": d.published,
                "budget_changes": budget_after,
            }))),
        }),
    })
}

/// Draws a budget change of `delta_pence` (positive: more budget) on fund `fund` down from
/// decision `reference`, refusing it if the decision is not in the log, is not about budgets,
/// is for another fund, or has less left than the change.
pub(crate) async fn use_decision(
    tx: &mut Tx,
    key: &str,
    reference: &str,
    fund: &str,
    delta_pence: i64,
    doing: &str,
) -> Result<(), StoreError> {
    let row = tx
        .fetch_optional(
            &format!(
                "SELECT {DECISION_COLUMNS} FROM decision \
                 WHERE partnership_key = $1 AND reference = $2"
            ),
            &[Arg::Text(key), Arg::Text(reference)],
        )
        .await
        .map_err(failed(doing))?;
    let Some(row) = row else {
        return Err(StoreError::Invalid(format!(
            "there is no decision {reference:?} in the decision log of {key}: record the decision that authorises the budget change first"
        )));
    };
    let d = stored_decision(&row, key).map_err(failed(doing))?;
    if !matches!(
        d.decision.decision_type.as_str(),
        "budget-revision" | "virement"
    ) {
        return Err(StoreError::Invalid(format!(
            "decision {reference} is a {}, not a budget revision or virement, so it cannot authorise a budget change",
            d.decision.decision_type
        )));
    }
    if let Some(f) = &d.decision.fund
        && f != fund
    {
        return Err(StoreError::Invalid(format!(
            "decision {reference} is about fund {f}, not {fund}"
        )));
    }
    let amount = d.decision.amount_pence.unwrap_or(0);
    let (column, used) = if delta_pence >= 0 {
        ("used_increase_pence", d.used_increase_pence)
    } else {
        ("used_decrease_pence", d.used_decrease_pence)
    };
    let change = delta_pence.unsigned_abs();
    let left = u64::try_from(amount - used).unwrap_or(0);
    if change > left {
        return Err(StoreError::Invalid(format!(
            "decision {reference} authorises budget changes of up to {} pence each way; {} pence of {} is left, and this change is {change} pence",
            amount,
            left,
            if delta_pence >= 0 {
                "increases"
            } else {
                "decreases"
            },
        )));
    }
    tx.execute(
        &format!(
            "UPDATE decision SET {column} = {column} + $3 \
             WHERE partnership_key = $1 AND reference = $2"
        ),
        &[
            Arg::Text(key),
            Arg::Text(reference),
            Arg::Int(i64::try_from(change).unwrap_or(i64::MAX)),
        ],
    )
    .await
    .map_err(failed(doing))?;
    Ok(())
}

/// Refuses `reference` unless it is a decision of kind `kind` in the partnership's log.
pub(crate) async fn check_decision_kind(
    tx: &mut Tx,
    key: &str,
    reference: &str,
    kind: &str,
    doing: &str,
) -> Result<(), StoreError> {
    let row = tx
        .fetch_optional(
            "SELECT decision_type FROM decision WHERE partnership_key = $1 AND reference = $2",
            &[Arg::Text(key), Arg::Text(reference)],
        )
        .await
        .map_err(failed(doing))?;
    match row
        .map(|r| r.text("decision_type"))
        .transpose()
        .map_err(failed(doing))?
    {
        None => Err(StoreError::Invalid(format!(
            "there is no decision {reference:?} in the decision log of {key}"
        ))),
        Some(t) if t != kind => Err(StoreError::Invalid(format!(
            "decision {reference} is a {t}, not a {kind}"
        ))),
        Some(_) => Ok(()),
    }
}

pub(crate) async fn decisions(pool: &Pool, key: &str) -> Result<Vec<StoredDecision>, StoreError> {
    pool.fetch_all(
        &format!("SELECT {DECISION_COLUMNS} FROM decision WHERE partnership_key = $1"),
        &[Arg::Text(key)],
    )
    .await
    .and_then(|rows| rows.iter().map(|r| stored_decision(r, key)).collect())
    .map(|mut list: Vec<StoredDecision>| {
        list.sort_by(|a, b| {
            (&a.decision.decided_on, &a.decision.reference)
                .cmp(&(&b.decision.decided_on, &b.decision.reference))
        });
        list
    })
    .map_err(StoreError::doing(format!("read the decision log of {key}")))
}
