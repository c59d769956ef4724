//! A plain-text summary of an agreement, for `agreement show` and `demo`.

use std::fmt::Write;

use concordat_core::agreement::{Agreement, FundKind, Status};
use concordat_core::notice;
use jiff::civil::Date;

pub fn render(a: &Agreement, today: Date) -> String {
    let mut out = String::new();
    let name = |id: &str| {
        a.partner(id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let _ = writeln!(out, "{} ({})", a.title, a.id);
    let mut status = a.status.label().to_string();
    if let Some(n) = a.draft_number {
        let _ = write!(status, ", draft {n}");
    }
    let basis: Vec<&str> = a.legal_basis.iter().map(|b| b.label()).collect();
    let _ = writeln!(
        out,
        "  Status: {status}. Legal basis: {}.",
        basis.join("; ")
    );
    let parties: Vec<String> = a
        .parties()
        .map(|p| format!("{} ({})", p.name, p.kind.label()))
        .collect();
    let _ = writeln!(out, "  Parties: {}.", parties.join(", "));
    let others: Vec<String> = a
        .partners
        .iter()
        .filter(|p| !p.party)
        .map(|p| {
            format!(
                "{} ({})",
                p.name,
                p.role.as_deref().unwrap_or(p.kind.label())
            )
        })
        .collect();
    if !others.is_empty() {
        let _ = writeln!(out, "  Also named: {}.", others.join(", "));
    }
    if !a.flexibilities.is_empty() {
        let flex: Vec<&str> = a.flexibilities.iter().map(|f| f.label()).collect();
        let _ = writeln!(out, "  Flexibilities: {}.", flex.join(", "));
    }
    let term: Vec<String> = a
        .start_date
        .map(|d| format!("from {d}"))
        .into_iter()
        .chain(match (a.end_date, a.term_years) {
            (Some(end), _) => Some(format!("to {end}")),
            (None, Some(y)) => Some(format!("{y} years")),
            (None, None) => None,
        })
        .collect();
    let term = if term.is_empty() {
        "not given".to_string()
    } else {
        term.join(", ")
    };
    let _ = writeln!(out, "  Term: {term}.");
    if !a.care_groups.is_empty() {
        let groups: Vec<String> = a
            .care_groups
            .iter()
            .map(|g| match (g.min_age, g.max_age) {
                (Some(lo), Some(hi)) => format!("{} ({lo}–{hi})", g.name),
                (Some(lo), None) => format!("{} ({lo}+)", g.name),
                (None, Some(hi)) => format!("{} (to {hi})", g.name),
                (None, None) => g.name.clone(),
            })
            .collect();
        let _ = writeln!(out, "  Care groups: {}.", groups.join("; "));
    }
    for area in &a.commissioning_areas {
        let leads: Vec<String> = area.lead.iter().map(|l| name(l)).collect();
        let _ = writeln!(
            out,
            "  Commissioning area {}: led by {}.",
            area.name,
            leads.join(" and ")
        );
    }
    for fund in &a.funds {
        let kind = match fund.kind {
            FundKind::Pooled => "pooled fund",
            FundKind::Aligned => "aligned budgets",
        };
        let mut line = format!("  {} ({kind}", fund.name);
        if let Some(h) = &fund.host {
            let _ = write!(line, ", hosted by {}", name(h));
        }
        if let Some(pm) = &fund.pool_manager {
            let _ = write!(line, ", pool manager: {}", pm.title);
        }
        line.push(')');
        let _ = writeln!(out, "{line}");
        match fund.contributions_by_year() {
            Ok(years) => {
                for (year, y) in years {
                    let total = y.total;
                    let parts: Vec<String> = y
                        .by_partner
                        .iter()
                        .map(|(p, m)| format!("{} {m}", name(p)))
                        .collect();
                    let _ = writeln!(
                        out,
                        "    {year} contributions {total}: {}.",
                        parts.join(", ")
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(out, "    contributions cannot be totalled: {e}");
            }
        }
        if let Some(rs) = &fund.risk_share {
            if let Some(r) = &rs.overspend {
                let _ = writeln!(out, "    Overspend: {}.", r.describe());
            }
            if let Some(r) = &rs.underspend {
                let _ = writeln!(out, "    Underspend: {}.", r.describe());
            }
        }
    }
    for b in &a.other_budgets {
        let _ = writeln!(out, "  {}: {}.", b.name, b.amount);
    }
    for t in &a.transfers {
        let about = if t.approximate { "about " } else { "" };
        let mut line = format!(
            "  Transfer {}: {about}{} from {} to {}",
            t.basis.label(),
            t.amount,
            name(&t.from),
            name(&t.to)
        );
        if let Some(via) = &t.via {
            let _ = write!(line, " via {}", name(via));
        }
        if let Some(y) = t.year {
            let _ = write!(line, " in {y}");
        }
        let _ = writeln!(out, "{line}.");
    }
    if !a.posts.is_empty() {
        let _ = writeln!(out, "  Posts: {}.", a.posts.len());
    }
    for b in &a.bodies {
        let seats: Vec<String> = b
            .seats
            .iter()
            .map(|s| format!("{} {}", name(&s.partner), s.voting))
            .collect();
        let mut line = format!("  Body: {}", b.name);
        if !seats.is_empty() {
            let _ = write!(line, ", voting seats {}", seats.join(", "));
        }
        if let Some(c) = b.co_opted_non_voting {
            let _ = write!(line, ", {c} co-opted non-voting");
        }
        if !b.reports_to.is_empty() {
            let to: Vec<String> = b
                .reports_to
                .iter()
                .map(|r| match a.bodies.iter().find(|x| &x.id == r) {
                    Some(body) => body.name.clone(),
                    None => name(r),
                })
                .collect();
            let _ = write!(line, "; reports to {}", to.join(" and "));
        }
        let _ = writeln!(out, "{line}.");
    }
    if let Some(n) = &a.notice {
        let _ = write!(out, "  Notice: {} months", n.months);
        if n.expiring == concordat_core::agreement::NoticeExpiry::EndOfFinancialYear {
            let _ = write!(out, ", expiring at the end of a financial year");
        }
        // "If served today" means something only while the agreement is in force.
        if a.status == Status::Active {
            match notice::earliest_end(a, today) {
                Ok(o) => {
                    let _ = writeln!(
                        out,
                        "; served today ({today}), the earliest end would be {}.",
                        o.earliest_end
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "; {e}.");
                }
            }
        } else {
            let _ = writeln!(out, ".");
        }
    }
    for u in &a.joint_units {
        let mut line = format!("  Joint unit: {}", u.name);
        if let Some(h) = &u.host {
            let _ = write!(line, ", hosted by {}", name(h));
        }
        let _ = writeln!(out, "{line}.");
    }
    if !a.annual_agreement_elements.is_empty() {
        let _ = writeln!(
            out,
            "  Annual agreements cover: {}.",
            a.annual_agreement_elements.join("; ")
        );
    }
    if !a.decision_levels.is_empty() {
        let levels: Vec<String> = a
            .decision_levels
            .iter()
            .map(|d| match &d.officer {
                Some(officer) => format!("{} (to {officer})", d.level.label()),
                None => d.level.label().to_string(),
            })
            .collect();
        let _ = writeln!(out, "  Decision levels: {}.", levels.join("; "));
    }
    if !a.schedules.is_empty() {
        let schedules: Vec<String> = a
            .schedules
            .iter()
            .map(|s| format!("{} {}", s.number, s.title))
            .collect();
        let _ = writeln!(out, "  Schedules: {}.", schedules.join("; "));
    }
    let signed = a.signatures.iter().filter(|s| s.date.is_some()).count();
    let _ = writeln!(
        out,
        "  Signatures: {signed} of {} parties.",
        a.parties().count()
    );
    out
}
