//! The audit chain: how each record's hash is made, and how a chain is checked.

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record of every chain: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the audit log: who did what, when, to what, with the state before and after.
///
/// Each partnership has its own chain: `seq` counts 1, 2, 3… within the partnership, and each
/// record's `prev_hash` is the `hash` of the record before it ([`GENESIS_HASH`] for seq 1).
///
/// # The hash, so that an auditor can recompute it by hand
///
/// ```text
/// hash = hex(sha256(prev_hash    + "\n" +
///                   partnership_key + "\n" +
///                   seq          + "\n" +     (decimal, no padding: 1, 2, … 10)
///                   recorded_at  + "\n" +     (RFC 3339 UTC text exactly as stored)
///                   actor        + "\n" +
///                   action       + "\n" +
///                   entity       + "\n" +
///                   before_json  + "\n" +     (the stored text; empty when NULL)
///                   after_json))              (the stored text; empty when NULL)
/// ```
///
/// `hex` is lowercase and there is no newline after the last field. The hash covers the
/// columns exactly as they are stored, so no knowledge of JSON is needed to check it. (The store
/// writes JSON compactly with object keys sorted, see [`canonical_json`], so the same state
/// always gives the same text.) The store refuses line breaks in the single-line fields, so the
/// `"\n"` separators cannot be forged.
///
/// For example, the first record of partnership `bcf-north`:
///
/// ```text
/// $ printf '%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s' \
///     0000000000000000000000000000000000000000000000000000000000000000 \
///     bcf-north 1 2025-04-01T09:00:00Z cli:alice agreement.create \
///     agreement:bcf-north:v1 '' '{"id":"bcf-north"}' | sha256sum
/// 9476e09c375a6aef0432ef0735f410d2744e7fc6629558e16da22e3b2ff358c9  -
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub partnership_key: String,
    pub seq: i64,
    /// RFC 3339 UTC, as passed in by the caller.
    pub recorded_at: String,
    pub actor: String,
    /// What was done, e.g. `agreement.create`, `agreement.new-version`.
    pub action: String,
    /// What it was done to, e.g. `agreement:bcf-north:v2`.
    pub entity: String,
    /// The state before, as canonical JSON text; `None` when there was nothing before.
    pub before_json: Option<String>,
    /// The state after, as canonical JSON text; `None` when nothing is left after.
    pub after_json: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record should have, recomputed from its other fields (see the type's
    /// documentation for the formula). `self.hash` is not used.
    pub fn compute_hash(&self) -> String {
        let seq = self.seq.to_string();
        let fields = [
            self.prev_hash.as_str(),
            self.partnership_key.as_str(),
            seq.as_str(),
            self.recorded_at.as_str(),
            self.actor.as_str(),
            self.action.as_str(),
            self.entity.as_str(),
            self.before_json.as_deref().unwrap_or(""),
            self.after_json.as_deref().unwrap_or(""),
        ];
        let mut hasher = Sha256::new();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                hasher.update(b"\n");
            }
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// The state before, parsed.
    pub fn before(&self) -> Result<Option<Value>, serde_json::Error> {
        self.before_json
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
    }

    /// The state after, parsed.
    pub fn after(&self) -> Result<Option<Value>, serde_json::Error> {
        self.after_json
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
    }
}

/// JSON text with every object's keys in sorted order and no insignificant whitespace, so that
/// the same value always gives the same text (and so the same audit hash).
///
/// This sorts explicitly rather than trusting serde_json's map type, whose order depends on
/// whether any crate in the build turns on its `preserve_order` feature.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The result of checking every audit chain in the database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditVerification {
    /// Partnerships whose chain was checked.
    pub chains_checked: u64,
    /// Audit records read and checked.
    pub records_checked: u64,
    /// How many problems were found in all (each record is reported at most once).
    pub mismatches: u64,
    /// The first problem, in partnership key order (byte order) then sequence order.
    pub first_mismatch: Option<AuditMismatch>,
}

impl AuditVerification {
    /// True when every chain checked out.
    pub fn is_intact(&self) -> bool {
        self.first_mismatch.is_none()
    }
}

/// A record whose chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditMismatch {
    pub partnership_key: String,
    /// The sequence number of the offending record (for missing records, the first one
    /// missing).
    pub seq: i64,
    pub reason: MismatchReason,
}

impl fmt::Display for AuditMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partnership {} record {}: {}",
            self.partnership_key, self.seq, self.reason
        )
    }
}

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MismatchReason {
    /// The stored hash is not the hash of the stored fields: the record was changed after it
    /// was written.
    HashMismatch { stored: String, recomputed: String },
    /// The record's `prev_hash` is not the hash of the record before it.
    BrokenLink { prev_hash: String, expected: String },
    /// The sequence jumps: records `expected..seq` are missing.
    SeqGap { expected: i64 },
    /// The chain ends before its recorded head: its last records were deleted.
    TailMissing { head_seq: i64 },
    /// The recorded head of the chain does not match its last record (or is missing).
    HeadMismatch { head: Option<(i64, String)> },
    /// The partnership exists but has no audit record at all.
    NoRecords,
}

impl fmt::Display for MismatchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MismatchReason::HashMismatch { stored, recomputed } => write!(
                f,
                "hash mismatch: the record was changed after it was written \
                 (stored hash {stored}, its fields hash to {recomputed})"
            ),
            MismatchReason::BrokenLink {
                prev_hash,
                expected,
            } => write!(
                f,
                "prev_hash does not link to the record before \
                 (prev_hash {prev_hash}, the record before has hash {expected})"
            ),
            MismatchReason::SeqGap { expected } => write!(
                f,
                "sequence gap: expected record {expected} next, so a record before this one \
                 was deleted"
            ),
            MismatchReason::TailMissing { head_seq } => write!(
                f,
                "missing: the chain was last written at record {head_seq}, so this record \
                 and any after it up to {head_seq} were deleted"
            ),
            MismatchReason::HeadMismatch {
                head: Some((seq, hash)),
            } => write!(
                f,
                "the chain head (record {seq}, hash {hash}) does not match this, the last \
                 record"
            ),
            MismatchReason::HeadMismatch { head: None } => write!(
                f,
                "the chain head is missing, so the end of the chain cannot be vouched for"
            ),
            MismatchReason::NoRecords => write!(
                f,
                "the partnership exists but its audit chain is empty: its records were deleted"
            ),
        }
    }
}

impl AuditVerification {
    fn note(&mut self, partnership_key: &str, seq: i64, reason: MismatchReason) {
        self.mismatches += 1;
        if self.first_mismatch.is_none() {
            self.first_mismatch = Some(AuditMismatch {
                partnership_key: partnership_key.to_string(),
                seq,
                reason,
            });
        }
    }

    /// Checks one partnership's chain.
    ///
    /// `records` must be that chain in ascending `seq` order; `head` is the stored chain head
    /// (`audit_head`), and `partnership_exists` says whether a partnership row exists (every
    /// partnership is created by a write that also starts its chain).
    pub(crate) fn check_chain(
        &mut self,
        partnership_key: &str,
        records: &[AuditRecord],
        head: Option<(i64, String)>,
        partnership_exists: bool,
    ) {
        self.chains_checked += 1;
        let mut expected_seq = 1;
        let mut expected_prev = GENESIS_HASH.to_string();
        for record in records {
            self.records_checked += 1;
            let recomputed = record.compute_hash();
            if record.seq != expected_seq {
                self.note(
                    partnership_key,
                    record.seq,
                    MismatchReason::SeqGap {
                        expected: expected_seq,
                    },
                );
            } else if record.prev_hash != expected_prev {
                self.note(
                    partnership_key,
                    record.seq,
                    MismatchReason::BrokenLink {
                        prev_hash: record.prev_hash.clone(),
                        expected: expected_prev.clone(),
                    },
                );
            } else if record.hash != recomputed {
                self.note(
                    partnership_key,
                    record.seq,
                    MismatchReason::HashMismatch {
                        stored: record.hash.clone(),
                        recomputed,
                    },
                );
            }
            // Carry on from what is stored, so that one altered record is reported once rather
            // than making every later record look wrong too.
            expected_seq = record.seq + 1;
            expected_prev = record.hash.clone();
        }
        match (records.last(), head) {
            (None, None) => {
                if partnership_exists {
                    self.note(partnership_key, 1, MismatchReason::NoRecords);
                }
            }
            (None, Some((head_seq, _))) => {
                self.note(partnership_key, 1, MismatchReason::TailMissing { head_seq });
            }
            (Some(last), Some((head_seq, _))) if head_seq > last.seq => {
                self.note(
                    partnership_key,
                    last.seq + 1,
                    MismatchReason::TailMissing { head_seq },
                );
            }
            (Some(last), Some((head_seq, head_hash)))
                if head_seq == last.seq && head_hash == last.hash => {}
            (Some(last), head) => {
                self.note(
                    partnership_key,
                    last.seq,
                    MismatchReason::HeadMismatch { head },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(seq: i64, prev_hash: &str, actor: &str, after: Option<&str>) -> AuditRecord {
        let mut r = AuditRecord {
            partnership_key: "bcf-north".into(),
            seq,
            recorded_at: "2025-04-01T09:00:00Z".into(),
            actor: actor.into(),
            action: "agreement.create".into(),
            entity: format!("agreement:bcf-north:v{seq}"),
            before_json: None,
            after_json: after.map(str::to_string),
            prev_hash: prev_hash.into(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        r
    }

    #[test]
    fn hash_matches_the_documented_worked_example() {
        let r = record(1, GENESIS_HASH, "cli:alice", Some(r#"{"id":"bcf-north"}"#));
        assert_eq!(
            r.hash,
            "9476e09c375a6aef0432ef0735f410d2744e7fc6629558e16da22e3b2ff358c9"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_is_compact() {
        let v = json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": "x"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x","d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn serde_json_keeps_sorted_maps() {
        // The workspace relies on serde_json's default sorted map (no `preserve_order`); if a
        // dependency ever turns that feature on, this fails and the change should be reviewed.
        let v: Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        assert_eq!(v.to_string(), r#"{"a":2,"b":1}"#);
    }

    #[test]
    fn a_sound_chain_passes_and_each_kind_of_damage_is_named() {
        let r1 = record(1, GENESIS_HASH, "cli:alice", Some("{}"));
        let r2 = record(2, &r1.hash, "cli:bob", Some("{}"));
        let r3 = record(3, &r2.hash, "cli:carol", Some("{}"));
        let head = Some((3, r3.hash.clone()));
        let check = |records: &[AuditRecord], head: Option<(i64, String)>| {
            let mut v = AuditVerification::default();
            v.check_chain("bcf-north", records, head, true);
            v
        };

        let ok = check(&[r1.clone(), r2.clone(), r3.clone()], head.clone());
        assert!(ok.is_intact());
        assert_eq!(ok.records_checked, 3);

        let mut altered = r2.clone();
        altered.actor = "mallory".into();
        let v = check(&[r1.clone(), altered, r3.clone()], head.clone());
        let m = v.first_mismatch.unwrap();
        assert_eq!((m.seq, v.mismatches), (2, 1));
        assert!(matches!(m.reason, MismatchReason::HashMismatch { .. }));

        let v = check(&[r1.clone(), r3.clone()], head.clone());
        let m = v.first_mismatch.unwrap();
        assert_eq!(m.seq, 3);
        assert_eq!(m.reason, MismatchReason::SeqGap { expected: 2 });

        let v = check(&[r1.clone(), r2.clone()], head.clone());
        let m = v.first_mismatch.unwrap();
        assert_eq!(m.seq, 3);
        assert_eq!(m.reason, MismatchReason::TailMissing { head_seq: 3 });

        let v = check(&[r1.clone(), r2.clone(), r3.clone()], None);
        assert_eq!(
            v.first_mismatch.unwrap().reason,
            MismatchReason::HeadMismatch { head: None }
        );

        let v = check(&[], None);
        assert_eq!(v.first_mismatch.unwrap().reason, MismatchReason::NoRecords);
    }
}
