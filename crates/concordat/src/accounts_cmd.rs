//! `concordat serve`, and the accounts behind it: organisations and the partners they are,
//! users and their roles per partnership, and API tokens for machine clients.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use concordat_core::access::{Role, check_password};
use concordat_store::{AccountChange, ApiTokenRow, GrantRow, NewUser, OrganisationRow, Store};

use crate::{DatabaseArgs, actor, now, open};

#[derive(Subcommand)]
pub(crate) enum OrgCommand {
    /// Add an organisation (a council, an NHS body) that users belong to.
    Add {
        /// A short key, e.g. `hertfordshire-cc`.
        key: String,
        /// Its name, e.g. "Hertfordshire County Council".
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Record that the organisation is a partner of a partnership: `--party hertfordshire:county-council`.
    Party {
        key: String,
        /// AGREEMENT:PARTNER, the partner's id in the agreement file.
        #[arg(long)]
        party: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the organisations and the partnerships each is party to.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user. The password is read from the first line of standard input, and must meet
    /// the rules (at least 10 characters, not a common password, not containing the user name).
    Add {
        username: String,
        /// The name shown on pages and in the audit log.
        #[arg(long)]
        name: String,
        /// The organisation's key.
        #[arg(long)]
        organisation: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Grant a role in a partnership. Refused if the user's organisation is not party to it,
    /// unless `--outside-reason` says why they should see it.
    Grant {
        username: String,
        #[arg(long)]
        agreement: String,
        /// viewer, finance_officer, pool_manager, board_secretary, board_member, administrator or auditor.
        #[arg(long)]
        role: String,
        #[arg(long)]
        outside_reason: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a role.
    Revoke {
        username: String,
        #[arg(long)]
        agreement: String,
        #[arg(long)]
        role: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Set a new password (read from standard input); every session of the user ends.
    Password {
        username: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the users and their roles.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a bearer token for a machine client; it is printed once and only its hash kept.
    Create {
        #[arg(long)]
        agreement: String,
        /// What it is for, e.g. "council finance system".
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "viewer")]
        role: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a token by its id.
    Revoke {
        token_id: String,
        #[arg(long)]
        agreement: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List a partnership's tokens.
    List {
        #[arg(long)]
        agreement: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn role(text: &str) -> Result<Role> {
    Role::parse(text).with_context(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!(
            "--role {text:?} is not a role; the roles are {}",
            names.join(", ")
        )
    })
}

fn read_password(username: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    check_password(&password, username).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(password)
}

pub(crate) async fn org_cmd(command: OrgCommand) -> Result<ExitCode> {
    match command {
        OrgCommand::Add { key, name, db } => {
            let store = open(&db).await?;
            store
                .change_accounts(
                    &actor(&db),
                    &now(),
                    AccountChange::AddOrganisation(OrganisationRow {
                        org_key: key.clone(),
                        name,
                    }),
                )
                .await?;
            outln!("organisation {key} added");
        }
        OrgCommand::Party { key, party, db } => {
            let Some((agreement, partner)) = party.split_once(':') else {
                bail!(
                    "--party {party:?}: write AGREEMENT:PARTNER, e.g. hertfordshire:county-council"
                );
            };
            let store = open(&db).await?;
            store
                .change_accounts(
                    &actor(&db),
                    &now(),
                    AccountChange::LinkParty {
                        org_key: key.clone(),
                        partnership_key: agreement.into(),
                        partner_id: partner.into(),
                    },
                )
                .await?;
            outln!("{key} is partner {partner} of {agreement}");
        }
        OrgCommand::List { db } => {
            let store = open(&db).await?;
            for o in store.organisations().await? {
                let parties: Vec<String> = store
                    .parties(&o.org_key)
                    .await?
                    .into_iter()
                    .map(|(k, p)| format!("{k}:{p}"))
                    .collect();
                outln!(
                    "{}\t{}\t{}",
                    o.org_key,
                    o.name,
                    if parties.is_empty() {
                        "-".into()
                    } else {
                        parties.join(", ")
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds a user with a password that meets the rules.
pub(crate) async fn add_user(
    store: &dyn Store,
    who: &concordat_store::Actor,
    at: &str,
    username: &str,
    name: &str,
    organisation: &str,
    password: &str,
) -> Result<()> {
    check_password(password, username).map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .change_accounts(
            who,
            at,
            AccountChange::AddUser(NewUser {
                username: username.to_string(),
                display_name: name.to_string(),
                org_key: organisation.to_string(),
                password_hash: concordat_web::hash_password(password)?,
            }),
        )
        .await?;
    Ok(())
}

pub(crate) async fn user_cmd(command: UserCommand) -> Result<ExitCode> {
    match command {
        UserCommand::Add {
            username,
            name,
            organisation,
            db,
        } => {
            let password = read_password(&username)?;
            let store = open(&db).await?;
            add_user(
                store.as_ref(),
                &actor(&db),
                &now(),
                &username,
                &name,
                &organisation,
                &password,
            )
            .await?;
            outln!("user {username} added to {organisation}");
        }
        UserCommand::Grant {
            username,
            agreement,
            role: r,
            outside_reason,
            db,
        } => {
            let r = role(&r)?;
            let store = open(&db).await?;
            store
                .change_accounts(
                    &actor(&db),
                    &now(),
                    AccountChange::Grant(GrantRow {
                        partnership_key: agreement.clone(),
                        username: username.clone(),
                        role: r.as_str().into(),
                        granted_at: String::new(),
                        granted_by: String::new(),
                        outside_reason,
                    }),
                )
                .await?;
            outln!("{username} is {} in {agreement}", r.label());
        }
        UserCommand::Revoke {
            username,
            agreement,
            role: r,
            db,
        } => {
            let r = role(&r)?;
            let store = open(&db).await?;
            store
                .change_accounts(
                    &actor(&db),
                    &now(),
                    AccountChange::Revoke {
                        partnership_key: agreement.clone(),
                        username: username.clone(),
                        role: r.as_str().into(),
                    },
                )
                .await?;
            outln!("{username} is no longer {} in {agreement}", r.label());
        }
        UserCommand::Password { username, db } => {
            let password = read_password(&username)?;
            let store = open(&db).await?;
            store
                .change_accounts(
                    &actor(&db),
                    &now(),
                    AccountChange::SetPassword {
                        username: username.clone(),
                        password_hash: concordat_web::hash_password(&password)?,
                    },
                )
                .await?;
            outln!("password of {username} changed; their sessions have ended");
        }
        UserCommand::List { db } => {
            let store = open(&db).await?;
            for u in store.users().await? {
                let grants: Vec<String> = store
                    .grants(Some(&u.username), None)
                    .await?
                    .into_iter()
                    .map(|g| format!("{}:{}", g.partnership_key, g.role))
                    .collect();
                outln!(
                    "{}\t{}\t{}\t{}",
                    u.username,
                    u.display_name,
                    u.org_key,
                    if grants.is_empty() {
                        "-".into()
                    } else {
                        grants.join(", ")
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn token_cmd(command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create {
            agreement,
            name,
            role: r,
            db,
        } => {
            let r = role(&r)?;
            let store = open(&db).await?;
            let (secret, token_id) = concordat_web::new_api_token();
            store
                .change_accounts(
                    &actor(&db),
                    &now(),
                    AccountChange::CreateToken(ApiTokenRow {
                        partnership_key: agreement.clone(),
                        token_id: token_id.clone(),
                        token_hash: concordat_web::token_hash(&secret),
                        name,
                        role: r.as_str().into(),
                        created_at: String::new(),
                        created_by: String::new(),
                        revoked_at: None,
                    }),
                )
                .await?;
            outln!("{secret}");
            eprintln!(
                "token {token_id} ({}) for {agreement}: shown once; only its hash is kept",
                r.label()
            );
        }
        TokenCommand::Revoke {
            token_id,
            agreement,
            db,
        } => {
            let store = open(&db).await?;
            store
                .change_accounts(
                    &actor(&db),
                    &now(),
                    AccountChange::RevokeToken {
                        partnership_key: agreement.clone(),
                        token_id: token_id.clone(),
                    },
                )
                .await?;
            outln!("token {token_id} revoked");
        }
        TokenCommand::List { agreement, db } => {
            let store = open(&db).await?;
            for t in store.api_tokens(&agreement).await? {
                outln!(
                    "{}\t{}\t{}\t{}",
                    t.token_id,
                    t.name,
                    t.role,
                    t.revoked_at
                        .map_or("valid".to_string(), |at| format!("revoked {at}"))
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves the web application until Ctrl-C or SIGTERM.
pub(crate) async fn serve(
    store: Box<dyn Store>,
    bind: &str,
    behind_tls: bool,
    json_logs: bool,
) -> Result<ExitCode> {
    concordat_web::init_logging(json_logs);
    let addr = concordat_web::parse_bind(bind)?;
    let state = concordat_web::AppState::new(
        Arc::from(store),
        concordat_web::Config {
            behind_tls,
            ..concordat_web::Config::default()
        },
    );
    concordat_web::serve(state, addr).await?;
    Ok(ExitCode::SUCCESS)
}
