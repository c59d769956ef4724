//! Who may do what in a partnership: the roles granted per agreement, what each allows, and
//! the rules a password must meet.

use serde::{Deserialize, Serialize};

/// A role a user (or a machine client's token) holds in one partnership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    FinanceOfficer,
    PoolManager,
    BoardSecretary,
    BoardMember,
    Administrator,
    /// Reads everything, including the audit log; changes nothing.
    Auditor,
}

/// Something a request wants to do in a partnership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// The agreement, its funds, monitoring, statements and postings.
    Read,
    /// The audit log and its verification.
    ReadAudit,
    /// Import a partner's ledger extract.
    ImportLedger,
    /// Set budgets and revise them.
    ManageBudgets,
    /// Close a period.
    ClosePeriod,
    /// Load a new version of the agreement file.
    ChangeAgreement,
    /// Create and revoke bearer tokens for machine clients.
    ManageTokens,
    /// Record meetings (attendance, declarations, agenda, papers) and their decisions.
    RecordProceedings,
    /// Keep the registers: disputes, complaints and compliments, risks.
    KeepRegisters,
    /// Record notice served by a partner, and the agreement's exit.
    ServeNotice,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Viewer,
        Role::FinanceOfficer,
        Role::PoolManager,
        Role::BoardSecretary,
        Role::BoardMember,
        Role::Administrator,
        Role::Auditor,
    ];

    /// The name stored and typed on the command line: `finance_officer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::FinanceOfficer => "finance_officer",
            Role::PoolManager => "pool_manager",
            Role::BoardSecretary => "board_secretary",
            Role::BoardMember => "board_member",
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
        }
    }

    /// The name people read: `finance officer`.
    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::FinanceOfficer => "finance officer",
            Role::PoolManager => "pool manager",
            Role::BoardSecretary => "board secretary",
            Role::BoardMember => "board member",
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        let wanted = text.trim().replace([' ', '-'], "_");
        Role::ALL.into_iter().find(|r| r.as_str() == wanted)
    }

    /// Whether this role allows `permission`. Every role reads; only the roles whose work it
    /// is change anything; the auditor reads the audit log and changes nothing.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        use Role as R;
        match permission {
            P::Read => true,
            P::ReadAudit => matches!(
                self,
                R::Auditor | R::Administrator | R::PoolManager | R::BoardSecretary
            ),
            P::ImportLedger | P::ClosePeriod => matches!(self, R::FinanceOfficer | R::PoolManager),
            P::ManageBudgets => matches!(self, R::PoolManager),
            P::ChangeAgreement => matches!(self, R::Administrator | R::BoardSecretary),
            P::ManageTokens => matches!(self, R::Administrator),
            P::RecordProceedings => matches!(self, R::BoardSecretary),
            P::KeepRegisters => matches!(self, R::BoardSecretary | R::PoolManager),
            P::ServeNotice => matches!(self, R::BoardSecretary | R::Administrator),
        }
    }
}

/// The roles a token made by someone holding `held` may have: viewer, and the roles they hold
/// themselves, so that no one reaches through a token what their own role does not allow.
pub fn token_roles(held: &[Role]) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| *r == Role::Viewer || held.contains(r))
        .collect()
}

/// Whether any of `roles` allows `permission`.
pub fn allowed(roles: &[Role], permission: Permission) -> bool {
    roles.iter().any(|r| r.allows(permission))
}

/// The shortest password accepted. NCSC guidance: a minimum length and a deny-list of common
/// passwords, no composition rules, and no short maximum.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Long enough for any passphrase or password manager; bounds the hashing work per attempt.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Passwords that appear at the top of every breached-password list, and this product's own
/// name; refused whatever their length.
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "0987654321",
    "1111111111",
    "qwertyuiop",
    "password12",
    "password123",
    "password1234",
    "passw0rd123",
    "iloveyou12",
    "qwerty1234",
    "qwerty12345",
    "letmein123",
    "welcome123",
    "abc1234567",
    "administrator",
    "changeme123",
    "concordat1",
    "concordat123",
    "sunshine123",
    "football123",
    "monkey12345",
    "princess123",
];

/// Checks a new password against the rules; the error says which rule, in plain words.
pub fn check_password(password: &str, username: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "Password must be at least {MIN_PASSWORD_CHARS} characters (it is {chars}); a few unrelated words make a strong one"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "Password must be {MAX_PASSWORD_CHARS} characters or fewer"
        ));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err("Password is one of the most common passwords; choose another".into());
    }
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err("Password must not contain the user name".into());
    }
    let first = password.chars().next();
    if password.chars().all(|c| Some(c) == first) {
        return Err("Password must not be one character repeated".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditor_reads_everything_and_changes_nothing() {
        for p in [Permission::Read, Permission::ReadAudit] {
            assert!(Role::Auditor.allows(p));
        }
        for p in [
            Permission::ImportLedger,
            Permission::ManageBudgets,
            Permission::ClosePeriod,
            Permission::ChangeAgreement,
            Permission::ManageTokens,
        ] {
            assert!(!Role::Auditor.allows(p), "{p:?}");
        }
    }

    #[test]
    fn only_the_pool_manager_sets_budgets_and_a_viewer_only_reads() {
        let setters: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.allows(Permission::ManageBudgets))
            .collect();
        assert_eq!(setters, [Role::PoolManager]);
        assert!(Role::Viewer.allows(Permission::Read));
        assert!(!Role::Viewer.allows(Permission::ReadAudit));
        assert!(!Role::Viewer.allows(Permission::ImportLedger));
    }

    #[test]
    fn a_token_holds_no_role_its_maker_lacks() {
        assert_eq!(
            token_roles(&[Role::Administrator]),
            [Role::Viewer, Role::Administrator]
        );
        assert_eq!(token_roles(&[]), [Role::Viewer]);
        assert!(!token_roles(&[Role::Administrator]).contains(&Role::FinanceOfficer));
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(Role::parse(r.label()), Some(r));
        }
        assert_eq!(Role::parse("superuser"), None);
    }

    #[test]
    fn password_rules_follow_the_guidance() {
        assert!(
            check_password("short", "ann")
                .unwrap_err()
                .contains("at least 10")
        );
        assert!(
            check_password("Password123", "ann")
                .unwrap_err()
                .contains("common")
        );
        assert!(
            check_password("annsmith-rules-ok", "annsmith")
                .unwrap_err()
                .contains("user name")
        );
        assert!(
            check_password("aaaaaaaaaaaa", "ann")
                .unwrap_err()
                .contains("repeated")
        );
        assert!(check_password(&"x".repeat(300), "ann").is_err());
        // No composition rules: a long lowercase passphrase is fine.
        assert_eq!(
            check_password("correct horse battery staple", "ann"),
            Ok(())
        );
    }
}
