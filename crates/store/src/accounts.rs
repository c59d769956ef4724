//! Who may use the system: organisations and the partners they are, user accounts, roles
//! granted per partnership, failed sign-ins, web sessions and bearer tokens.
//!
//! Changes go through the one write path like every other. A grant or token belongs to a
//! partnership and is recorded in that partnership's audit chain; organisations, accounts,
//! sign-ins and sessions are recorded in the chain [`ACCOUNTS_CHAIN`].

use serde::Serialize;
use serde_json::json;

use crate::StoreError;
use crate::audit::canonical_json;
use crate::db::{Arg, Pool, Row, Tx};
use crate::ledger_store::{db as failed, no_partnership, partnership_exists};
use crate::sql_store::{AuditEntry, Change, CommandResult, check_field};

/// The audit chain for changes that belong to no one partnership.
pub const ACCOUNTS_CHAIN: &str = "_accounts";

/// An organisation users belong to: a council, an NHS body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrganisationRow {
    pub org_key: String,
    pub name: String,
}

/// A new user account. The password arrives already hashed (argon2id, PHC string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub org_key: String,
    #[serde(skip)]
    pub password_hash: String,
}

/// A user account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub username: String,
    pub display_name: String,
    pub org_key: String,
    pub org_name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: String,
}

/// A role granted to a user in a partnership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantRow {
    pub partnership_key: String,
    pub username: String,
    pub role: String,
    pub granted_at: String,
    pub granted_by: String,
    /// Why a user whose organisation is not party to the partnership may see it.
    pub outside_reason: Option<String>,
}

/// A signed-in session of the web application. Only the hash of its identifier is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    pub token_hash: String,
    pub username: String,
    pub csrf_token: String,
    pub started_at: String,
    pub expires_at: String,
}

/// A bearer token for a machine client, scoped to one partnership and one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiTokenRow {
    pub partnership_key: String,
    pub token_id: String,
    #[serde(skip)]
    pub token_hash: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

/// A change to who may use the system.
pub enum AccountChange {
    AddOrganisation(OrganisationRow),
    LinkParty {
        org_key: String,
        partnership_key: String,
        partner_id: String,
    },
    AddUser(NewUser),
    SetPassword {
        username: String,
        password_hash: String,
    },
    Grant(GrantRow),
    Revoke {
        partnership_key: String,
        username: String,
        role: String,
    },
    SignInFailed {
        username: String,
    },
    StartSession(SessionRow),
    EndSession {
        token_hash: String,
    },
    CreateToken(ApiTokenRow),
    RevokeToken {
        partnership_key: String,
        token_id: String,
    },
}

impl AccountChange {
    pub(crate) fn chain_key(&self) -> &str {
        match self {
            AccountChange::LinkParty {
                partnership_key, ..
            }
            | AccountChange::Revoke {
                partnership_key, ..
            }
            | AccountChange::RevokeToken {
                partnership_key, ..
            } => partnership_key,
            AccountChange::Grant(g) => &g.partnership_key,
            AccountChange::CreateToken(t) => &t.partnership_key,
            _ => ACCOUNTS_CHAIN,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            AccountChange::AddOrganisation(o) => format!("add organisation {}", o.org_key),
            AccountChange::LinkParty {
                org_key,
                partnership_key,
                partner_id,
            } => format!("make {org_key} partner {partner_id} of {partnership_key}"),
            AccountChange::AddUser(u) => format!("add user {}", u.username),
            AccountChange::SetPassword { username, .. } => {
                format!("set the password of {username}")
            }
            AccountChange::Grant(g) => format!(
                "grant {} to {} in {}",
                g.role, g.username, g.partnership_key
            ),
            AccountChange::Revoke {
                partnership_key,
                username,
                role,
            } => format!("revoke {role} from {username} in {partnership_key}"),
            AccountChange::SignInFailed { username } => {
                format!("record a failed sign-in of {username}")
            }
            AccountChange::StartSession(s) => format!("start a session for {}", s.username),
            AccountChange::EndSession { .. } => "end a session".into(),
            AccountChange::CreateToken(t) => {
                format!("create token {} in {}", t.token_id, t.partnership_key)
            }
            AccountChange::RevokeToken {
                partnership_key,
                token_id,
            } => format!("revoke token {token_id} in {partnership_key}"),
        }
    }
}

fn check_key(what: &str, value: &str) -> Result<(), StoreError> {
    check_field(what, value)?;
    let ok = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if !ok {
        return Err(StoreError::Invalid(format!(
            "the {what} {value:?} may hold only letters, digits and - _ . @"
        )));
    }
    Ok(())
}

fn check_role(role: &str) -> Result<(), StoreError> {
    use concordat_core::access::Role;
    // The roles are the core's; the schema's CHECK constraint holds the same names.
    if Role::ALL.iter().any(|r| r.as_str() == role) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{role:?} is not a role; the roles are {}",
            Role::ALL.map(Role::as_str).join(", ")
        )))
    }
}

fn done(
    action: &'static str,
    entity: String,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Change {
    Change {
        result: CommandResult::Done,
        audit: Some(AuditEntry {
            action,
            entity,
            before_json: before.map(|v| canonical_json(&v)),
            after_json: after.map(|v| canonical_json(&v)),
        }),
    }
}

async fn exists(tx: &mut Tx, sql: &str, args: &[Arg<'_>]) -> Result<bool, sqlx::Error> {
    Ok(tx.fetch_optional(sql, args).await?.is_some())
}

pub(crate) async fn apply(
    tx: &mut Tx,
    actor: &str,
    at: &str,
    command: AccountChange,
    doing: &str,
) -> Result<Change, StoreError> {
    match command {
        AccountChange::AddOrganisation(o) => {
            check_key("organisation key", &o.org_key)?;
            check_field("organisation name", &o.name)?;
            let written = tx
                .execute(
                    "INSERT INTO organisation (org_key, name, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (org_key) DO NOTHING",
                    &[Arg::Text(&o.org_key), Arg::Text(&o.name), Arg::Text(at)],
                )
                .await
                .map_err(failed(doing))?;
            if written == 0 {
                return Err(StoreError::Invalid(format!(
                    "there is already an organisation {:?}",
                    o.org_key
                )));
            }
            Ok(done(
                "organisation.add",
                format!("organisation:{}", o.org_key),
                None,
                Some(json!(o)),
            ))
        }
        AccountChange::LinkParty {
            org_key,
            partnership_key,
            partner_id,
        } => {
            if !partnership_exists(tx, &partnership_key)
                .await
                .map_err(failed(doing))?
            {
                return Err(no_partnership(&partnership_key));
            }
            organisation_must_exist(tx, &org_key, doing).await?;
            if !exists(
                tx,
                "SELECT partner_id FROM partner WHERE partnership_key = $1 AND partner_id = $2",
                &[Arg::Text(&partnership_key), Arg::Text(&partner_id)],
            )
            .await
            .map_err(failed(doing))?
            {
                return Err(StoreError::Invalid(format!(
                    "{partnership_key} has no partner {partner_id:?}"
                )));
            }
            let before = tx
                .fetch_optional(
                    "SELECT org_key FROM organisation_party \
                     WHERE partnership_key = $1 AND partner_id = $2",
                    &[Arg::Text(&partnership_key), Arg::Text(&partner_id)],
                )
                .await
                .map_err(failed(doing))?
                .map(|r| r.text("org_key"))
                .transpose()
                .map_err(failed(doing))?;
            if before.as_deref() == Some(org_key.as_str()) {
                return Ok(Change {
                    result: CommandResult::Done,
                    audit: None,
                });
            }
            if let Some(old) = &before {
                // The old organisation's users may see the partnership only because it was
                // this partner: moving the partner would leave their grants without cause.
                let dependent = tx
                    .fetch_all(
                        "SELECT g.username FROM role_grant g JOIN app_user u \
                             ON u.username = g.username \
                         WHERE g.partnership_key = $1 AND u.org_key = $2 \
                           AND g.outside_reason IS NULL",
                        &[Arg::Text(&partnership_key), Arg::Text(old)],
                    )
                    .await
                    .map_err(failed(doing))?;
                let still_party = exists(
                    tx,
                    "SELECT partner_id FROM organisation_party \
                     WHERE partnership_key = $1 AND org_key = $2 AND partner_id <> $3",
                    &[
                        Arg::Text(&partnership_key),
                        Arg::Text(old),
                        Arg::Text(&partner_id),
                    ],
                )
                .await
                .map_err(failed(doing))?;
                if !dependent.is_empty() && !still_party {
                    let mut names: Vec<String> = dependent
                        .iter()
                        .map(|r| r.text("username"))
                        .collect::<Result<_, _>>()
                        .map_err(failed(doing))?;
                    names.sort();
                    names.dedup();
                    return Err(StoreError::Invalid(format!(
                        "{partner_id} of {partnership_key} is {old} now, and its users {} hold roles there as {old}: revoke them (or grant them with a reason) before moving the partner to {org_key}",
                        names.join(", ")
                    )));
                }
            }
            tx.execute(
                "INSERT INTO organisation_party (partnership_key, partner_id, org_key) \
                 VALUES ($1, $2, $3) ON CONFLICT (partnership_key, partner_id) \
                 DO UPDATE SET org_key = excluded.org_key",
                &[
                    Arg::Text(&partnership_key),
                    Arg::Text(&partner_id),
                    Arg::Text(&org_key),
                ],
            )
            .await
            .map_err(failed(doing))?;
            Ok(done(
                "organisation.party",
                format!("partner:{partnership_key}:{partner_id}"),
                before.map(|o| json!({ "org_key": o })),
                Some(json!({ "org_key": org_key })),
            ))
        }
        AccountChange::AddUser(u) => {
            check_key("user name", &u.username)?;
            check_field("display name", &u.display_name)?;
            check_field("password hash", &u.password_hash)?;
            organisation_must_exist(tx, &u.org_key, doing).await?;
            let written = tx
                .execute(
                    "INSERT INTO app_user (username, display_name, org_key, password_hash, \
                         created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (username) DO NOTHING",
                    &[
                        Arg::Text(&u.username),
                        Arg::Text(&u.display_name),
                        Arg::Text(&u.org_key),
                        Arg::Text(&u.password_hash),
                        Arg::Text(at),
                    ],
                )
                .await
                .map_err(failed(doing))?;
            if written == 0 {
                return Err(StoreError::Invalid(format!(
                    "there is already a user {:?}",
                    u.username
                )));
            }
            Ok(done(
                "user.add",
                format!("user:{}", u.username),
                None,
                Some(json!(u)),
            ))
        }
        AccountChange::SetPassword {
            username,
            password_hash,
        } => {
            check_field("password hash", &password_hash)?;
            let written = tx
                .execute(
                    "UPDATE app_user SET password_hash = $1 WHERE username = $2",
                    &[Arg::Text(&password_hash), Arg::Text(&username)],
                )
                .await
                .map_err(failed(doing))?;
            if written == 0 {
                return Err(no_user(&username));
            }
            // End every session: whoever knew the old password is signed out.
            tx.execute(
                "UPDATE web_session SET ended_at = $1 WHERE username = $2 AND ended_at IS NULL",
                &[Arg::Text(at), Arg::Text(&username)],
            )
            .await
            .map_err(failed(doing))?;
            Ok(done(
                "user.password",
                format!("user:{username}"),
                None,
                Some(json!({ "password": "changed", "sessions": "ended" })),
            ))
        }
        AccountChange::Grant(g) => {
            check_role(&g.role)?;
            if !partnership_exists(tx, &g.partnership_key)
                .await
                .map_err(failed(doing))?
            {
                return Err(no_partnership(&g.partnership_key));
            }
            let Some(org) = tx
                .fetch_optional(
                    "SELECT org_key FROM app_user WHERE username = $1",
                    &[Arg::Text(&g.username)],
                )
                .await
                .map_err(failed(doing))?
            else {
                return Err(no_user(&g.username));
            };
            let org = org.text("org_key").map_err(failed(doing))?;
            let party = exists(
                tx,
                "SELECT partner_id FROM organisation_party \
                 WHERE partnership_key = $1 AND org_key = $2",
                &[Arg::Text(&g.partnership_key), Arg::Text(&org)],
            )
            .await
            .map_err(failed(doing))?;
            match (&g.outside_reason, party) {
                (None, false) => {
                    return Err(StoreError::Invalid(format!(
                        "{} belongs to {org}, which is not party to {}: a grant outside the user's organisation needs a reason",
                        g.username, g.partnership_key
                    )));
                }
                (Some(reason), _) => check_field("reason for the grant", reason)?,
                (None, true) => {}
            }
            let written = tx
                .execute(
                    "INSERT INTO role_grant (partnership_key, username, role, granted_at, \
                         granted_by, outside_reason) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (partnership_key, username, role) DO NOTHING",
                    &[
                        Arg::Text(&g.partnership_key),
                        Arg::Text(&g.username),
                        Arg::Text(&g.role),
                        Arg::Text(at),
                        Arg::Text(actor),
                        Arg::OptText(g.outside_reason.as_deref()),
                    ],
                )
                .await
                .map_err(failed(doing))?;
            if written == 0 {
                // Already held: nothing changes, nothing is recorded.
                return Ok(Change {
                    result: CommandResult::Done,
                    audit: None,
                });
            }
            Ok(done(
                "role.grant",
                format!("user:{}", g.username),
                None,
                Some(json!({ "role": g.role, "outside_reason": g.outside_reason })),
            ))
        }
        AccountChange::Revoke {
            partnership_key,
            username,
            role,
        } => {
            check_role(&role)?;
            let written = tx
                .execute(
                    "DELETE FROM role_grant WHERE partnership_key = $1 AND username = $2 \
                     AND role = $3",
                    &[
                        Arg::Text(&partnership_key),
                        Arg::Text(&username),
                        Arg::Text(&role),
                    ],
                )
                .await
                .map_err(failed(doing))?;
            if written == 0 {
                return Err(StoreError::Invalid(format!(
                    "{username} does not hold {role} in {partnership_key}"
                )));
            }
            Ok(done(
                "role.revoke",
                format!("user:{username}"),
                Some(json!({ "role": role })),
                None,
            ))
        }
        AccountChange::SignInFailed { username } => {
            check_field("user name", &username)?;
            tx.execute(
                "INSERT INTO sign_in_failure (username, failed_at) VALUES ($1, $2)",
                &[Arg::Text(&username), Arg::Text(at)],
            )
            .await
            .map_err(failed(doing))?;
            Ok(done(
                "sign_in.failed",
                format!("user:{username}"),
                None,
                None,
            ))
        }
        AccountChange::StartSession(s) => {
            if !exists(
                tx,
                "SELECT username FROM app_user WHERE username = $1",
                &[Arg::Text(&s.username)],
            )
            .await
            .map_err(failed(doing))?
            {
                return Err(no_user(&s.username));
            }
            tx.execute(
                "INSERT INTO web_session (token_hash, username, csrf_token, started_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[
                    Arg::Text(&s.token_hash),
                    Arg::Text(&s.username),
                    Arg::Text(&s.csrf_token),
                    Arg::Text(&s.started_at),
                    Arg::Text(&s.expires_at),
                ],
            )
            .await
            .map_err(failed(doing))?;
            Ok(done(
                "session.start",
                format!("user:{}", s.username),
                None,
                // A prefix of the hash tells sessions apart without giving anything away.
                Some(
                    json!({ "session": &s.token_hash[..12.min(s.token_hash.len())], "expires_at": s.expires_at }),
                ),
            ))
        }
        AccountChange::EndSession { token_hash } => {
            let Some(row) = tx
                .fetch_optional(
                    "SELECT username FROM web_session WHERE token_hash = $1 AND ended_at IS NULL",
                    &[Arg::Text(&token_hash)],
                )
                .await
                .map_err(failed(doing))?
            else {
                return Ok(Change {
                    result: CommandResult::Done,
                    audit: None,
                });
            };
            let username = row.text("username").map_err(failed(doing))?;
            tx.execute(
                "UPDATE web_session SET ended_at = $1 WHERE token_hash = $2",
                &[Arg::Text(at), Arg::Text(&token_hash)],
            )
            .await
            .map_err(failed(doing))?;
            Ok(done(
                "session.end",
                format!("user:{username}"),
                Some(json!({ "session": &token_hash[..12.min(token_hash.len())] })),
                None,
            ))
        }
        AccountChange::CreateToken(t) => {
            check_key("token id", &t.token_id)?;
            check_field("token name", &t.name)?;
            check_role(&t.role)?;
            if !partnership_exists(tx, &t.partnership_key)
                .await
                .map_err(failed(doing))?
            {
                return Err(no_partnership(&t.partnership_key));
            }
            tx.execute(
                "INSERT INTO api_token (partnership_key, token_id, token_hash, name, role, \
                     created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    Arg::Text(&t.partnership_key),
                    Arg::Text(&t.token_id),
                    Arg::Text(&t.token_hash),
                    Arg::Text(&t.name),
                    Arg::Text(&t.role),
                    Arg::Text(at),
                    Arg::Text(actor),
                ],
            )
            .await
            .map_err(failed(doing))?;
            Ok(done(
                "token.create",
                format!("token:{}", t.token_id),
                None,
                Some(json!({ "name": t.name, "role": t.role })),
            ))
        }
        AccountChange::RevokeToken {
            partnership_key,
            token_id,
        } => {
            let written = tx
                .execute(
                    "UPDATE api_token SET revoked_at = $1, revoked_by = $2 \
                     WHERE partnership_key = $3 AND token_id = $4 AND revoked_at IS NULL",
                    &[
                        Arg::Text(at),
                        Arg::Text(actor),
                        Arg::Text(&partnership_key),
                        Arg::Text(&token_id),
                    ],
                )
                .await
                .map_err(failed(doing))?;
            if written == 0 {
                return Err(StoreError::Invalid(format!(
                    "{partnership_key} has no token {token_id:?} that is still valid"
                )));
            }
            Ok(done(
                "token.revoke",
                format!("token:{token_id}"),
                Some(json!({ "revoked": false })),
                Some(json!({ "revoked": true })),
            ))
        }
    }
}

fn no_user(username: &str) -> StoreError {
    StoreError::Invalid(format!("there is no user {username:?}"))
}

async fn organisation_must_exist(
    tx: &mut Tx,
    org_key: &str,
    doing: &str,
) -> Result<(), StoreError> {
    if exists(
        tx,
        "SELECT org_key FROM organisation WHERE org_key = $1",
        &[Arg::Text(org_key)],
    )
    .await
    .map_err(failed(doing))?
    {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "there is no organisation {org_key:?}; add it first"
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

const USER_COLUMNS: &str = "u.username, u.display_name, u.org_key, o.name AS org_name, \
                            u.password_hash, u.created_at";

fn user_row(row: &Row) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        username: row.text("username")?,
        display_name: row.text("display_name")?,
        org_key: row.text("org_key")?,
        org_name: row.text("org_name")?,
        password_hash: row.text("password_hash")?,
        created_at: row.text("created_at")?,
    })
}

fn grant_row(row: &Row) -> Result<GrantRow, sqlx::Error> {
    Ok(GrantRow {
        partnership_key: row.text("partnership_key")?,
        username: row.text("username")?,
        role: row.text("role")?,
        granted_at: row.text("granted_at")?,
        granted_by: row.text("granted_by")?,
        outside_reason: row.opt_text("outside_reason")?,
    })
}

fn token_row(row: &Row) -> Result<ApiTokenRow, sqlx::Error> {
    Ok(ApiTokenRow {
        partnership_key: row.text("partnership_key")?,
        token_id: row.text("token_id")?,
        token_hash: row.text("token_hash")?,
        name: row.text("name")?,
        role: row.text("role")?,
        created_at: row.text("created_at")?,
        created_by: row.text("created_by")?,
        revoked_at: row.opt_text("revoked_at")?,
    })
}

fn reading(what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |cause| StoreError::Database {
        doing: format!("read {what}"),
        cause,
    }
}

pub(crate) async fn user(pool: &Pool, username: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM app_user u JOIN organisation o ON o.org_key = u.org_key \
         WHERE u.username = $1"
    );
    pool.fetch_optional(&sql, &[Arg::Text(username)])
        .await
        .map_err(reading("a user"))?
        .map(|r| user_row(&r))
        .transpose()
        .map_err(reading("a user"))
}

pub(crate) async fn users(pool: &Pool) -> Result<Vec<UserRow>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM app_user u JOIN organisation o ON o.org_key = u.org_key"
    );
    let mut rows: Vec<UserRow> = pool
        .fetch_all(&sql, &[])
        .await
        .map_err(reading("users"))?
        .iter()
        .map(user_row)
        .collect::<Result<_, _>>()
        .map_err(reading("users"))?;
    rows.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(rows)
}

pub(crate) async fn organisations(pool: &Pool) -> Result<Vec<OrganisationRow>, StoreError> {
    let mut rows: Vec<OrganisationRow> = pool
        .fetch_all("SELECT org_key, name FROM organisation", &[])
        .await
        .map_err(reading("organisations"))?
        .iter()
        .map(|r| {
            Ok(OrganisationRow {
                org_key: r.text("org_key")?,
                name: r.text("name")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(reading("organisations"))?;
    rows.sort_by(|a, b| a.org_key.cmp(&b.org_key));
    Ok(rows)
}

/// The (partnership, partner) pairs `org_key` is party to.
pub(crate) async fn parties(
    pool: &Pool,
    org_key: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut rows: Vec<(String, String)> = pool
        .fetch_all(
            "SELECT partnership_key, partner_id FROM organisation_party WHERE org_key = $1",
            &[Arg::Text(org_key)],
        )
        .await
        .map_err(reading("an organisation's partnerships"))?
        .iter()
        .map(|r| Ok((r.text("partnership_key")?, r.text("partner_id")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(reading("an organisation's partnerships"))?;
    rows.sort();
    Ok(rows)
}

pub(crate) async fn grants(
    pool: &Pool,
    username: Option<&str>,
    partnership_key: Option<&str>,
) -> Result<Vec<GrantRow>, StoreError> {
    let columns = "partnership_key, username, role, granted_at, granted_by, outside_reason";
    let rows = match (username, partnership_key) {
        (Some(u), _) => {
            pool.fetch_all(
                &format!("SELECT {columns} FROM role_grant WHERE username = $1"),
                &[Arg::Text(u)],
            )
            .await
        }
        (None, Some(k)) => {
            pool.fetch_all(
                &format!("SELECT {columns} FROM role_grant WHERE partnership_key = $1"),
                &[Arg::Text(k)],
            )
            .await
        }
        (None, None) => {
            pool.fetch_all(&format!("SELECT {columns} FROM role_grant"), &[])
                .await
        }
    }
    .map_err(reading("grants"))?;
    let mut grants: Vec<GrantRow> = rows
        .iter()
        .map(grant_row)
        .collect::<Result<_, _>>()
        .map_err(reading("grants"))?;
    grants.sort_by(|a, b| {
        (&a.partnership_key, &a.username, &a.role).cmp(&(&b.partnership_key, &b.username, &b.role))
    });
    Ok(grants)
}

/// Failed sign-ins of `username` after `since` and after its last successful sign-in.
pub(crate) async fn recent_failures(
    pool: &Pool,
    username: &str,
    since: &str,
) -> Result<Vec<String>, StoreError> {
    let last_success = pool
        .fetch_optional(
            "SELECT MAX(started_at) AS last FROM web_session WHERE username = $1",
            &[Arg::Text(username)],
        )
        .await
        .map_err(reading("sign-ins"))?
        .map(|r| r.opt_text("last"))
        .transpose()
        .map_err(reading("sign-ins"))?
        .flatten()
        .unwrap_or_default();
    let from = if last_success.as_str() > since {
        last_success
    } else {
        since.to_string()
    };
    let mut times: Vec<String> = pool
        .fetch_all(
            "SELECT failed_at FROM sign_in_failure WHERE username = $1 AND failed_at > $2",
            &[Arg::Text(username), Arg::Text(&from)],
        )
        .await
        .map_err(reading("failed sign-ins"))?
        .iter()
        .map(|r| r.text("failed_at"))
        .collect::<Result<_, _>>()
        .map_err(reading("failed sign-ins"))?;
    times.sort();
    Ok(times)
}

/// The session and its user together: what every signed-in request needs first.
pub(crate) async fn session_user(
    pool: &Pool,
    token_hash: &str,
    now: &str,
) -> Result<Option<(SessionRow, UserRow)>, StoreError> {
    let sql = format!(
        "SELECT s.token_hash, s.csrf_token, s.started_at, s.expires_at, {USER_COLUMNS} \
         FROM web_session s JOIN app_user u ON u.username = s.username \
         JOIN organisation o ON o.org_key = u.org_key \
         WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2"
    );
    pool.fetch_optional(&sql, &[Arg::Text(token_hash), Arg::Text(now)])
        .await
        .map_err(reading("a session"))?
        .map(|r| {
            let user = user_row(&r)?;
            Ok((
                SessionRow {
                    token_hash: r.text("token_hash")?,
                    username: user.username.clone(),
                    csrf_token: r.text("csrf_token")?,
                    started_at: r.text("started_at")?,
                    expires_at: r.text("expires_at")?,
                },
                user,
            ))
        })
        .transpose()
        .map_err(reading("a session"))
}

const TOKEN_COLUMNS: &str =
    "partnership_key, token_id, token_hash, name, role, created_at, created_by, revoked_at";

/// The token with this hash, if it has not been revoked.
pub(crate) async fn api_token(
    pool: &Pool,
    token_hash: &str,
) -> Result<Option<ApiTokenRow>, StoreError> {
    pool.fetch_optional(
        &format!(
            "SELECT {TOKEN_COLUMNS} FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL"
        ),
        &[Arg::Text(token_hash)],
    )
    .await
    .map_err(reading("a token"))?
    .map(|r| token_row(&r))
    .transpose()
    .map_err(reading("a token"))
}

pub(crate) async fn api_tokens(pool: &Pool, key: &str) -> Result<Vec<ApiTokenRow>, StoreError> {
    let mut rows: Vec<ApiTokenRow> = pool
        .fetch_all(
            &format!("SELECT {TOKEN_COLUMNS} FROM api_token WHERE partnership_key = $1"),
            &[Arg::Text(key)],
        )
        .await
        .map_err(reading("tokens"))?
        .iter()
        .map(token_row)
        .collect::<Result<_, _>>()
        .map_err(reading("tokens"))?;
    rows.sort_by(|a, b| a.token_id.cmp(&b.token_id));
    Ok(rows)
}
