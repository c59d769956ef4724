//! Obligations as an iCalendar file (RFC 5545), so people can put them in their own
//! calendars: one all-day event per obligation, with a stable UID so importing a newer file
//! updates the events rather than duplicating them.

use concordat_core::obligations::{Obligation, ObligationKind};

/// Escapes a TEXT value (RFC 5545 3.3.11).
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets, never inside a character (RFC 5545 3.1).
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

fn kind_key(kind: ObligationKind) -> &'static str {
    match kind {
        ObligationKind::QuarterlyStatement => "quarterly-statement",
        ObligationKind::AnnualReturn => "annual-return",
        ObligationKind::Review => "review",
        ObligationKind::TermEnd => "term-end",
        ObligationKind::BudgetTimetable => "budget-timetable",
        ObligationKind::ScheduleReview => "schedule-review",
        ObligationKind::NoticeWindow => "notice-window",
        ObligationKind::Meeting => "meeting",
        ObligationKind::DisputeStep => "dispute-step",
        ObligationKind::ComplaintAcknowledgement => "complaint-acknowledgement",
        ObligationKind::ComplaintResponse => "complaint-response",
        ObligationKind::RiskReview => "risk-review",
        ObligationKind::NoticeEnds => "notice-ends",
    }
}

/// A short stable hash (FNV-1a, 32 bits) of the title, so two events of one kind on one day
/// (two risks due for review) keep apart UIDs.
fn title_hash(title: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in title.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The calendar for one agreement. `stamp` is when it was made, as `YYYYMMDDTHHMMSSZ`.
pub fn render_ics(
    agreement_id: &str,
    title: &str,
    obligations: &[Obligation],
    stamp: &str,
) -> String {
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Concordat//Obligations//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ] {
        fold(line, &mut out);
    }
    fold(
        &format!("X-WR-CALNAME:{}", text(&format!("{title}: obligations"))),
        &mut out,
    );
    for o in obligations {
        let day = o.due.strftime("%Y%m%d").to_string();
        let next = o
            .due
            .tomorrow()
            .map(|d| d.strftime("%Y%m%d").to_string())
            .unwrap_or_else(|_| day.clone());
        let uid = format!(
            "{}-{}-{}-{}-{}@concordat",
            agreement_id,
            kind_key(o.kind),
            o.fund.as_deref().unwrap_or("agreement"),
            day,
            title_hash(&o.title)
        );
        fold("BEGIN:VEVENT", &mut out);
        fold(&format!("UID:{}", text(&uid)), &mut out);
        fold(&format!("DTSTAMP:{stamp}"), &mut out);
        fold(&format!("DTSTART;VALUE=DATE:{day}"), &mut out);
        fold(&format!("DTEND;VALUE=DATE:{next}"), &mut out);
        fold(&format!("SUMMARY:{}", text(&o.title)), &mut out);
        fold(
            &format!(
                "DESCRIPTION:{}",
                text(&format!("Due {}: {}.", o.due, o.basis))
            ),
            &mut out,
        );
        fold(&format!("CATEGORIES:{}", kind_key(o.kind)), &mut out);
        fold("TRANSP:TRANSPARENT", &mut out);
        fold("END:VEVENT", &mut out);
    }
    fold("END:VCALENDAR", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_folded_at_75_octets_and_text_is_escaped() {
        let mut out = String::new();
        fold(&"é".repeat(60), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        assert_eq!(out.replace("\r\n ", ""), format!("{}\r\n", "é".repeat(60)));
        assert_eq!(text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }
}
