//! Signing in and who may do what: argon2id passwords, throttled sign-in, sessions in the
//! database, CSRF tokens on every form, bearer tokens for machine clients, and the tenancy
//! rule (a partnership is visible only through a role granted in it).

use std::collections::BTreeMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use concordat_core::access::{Permission, Role};
use concordat_store::{Actor, SessionRow, UserRow};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::WebError;

/// The session cookie. `__Host-` would pin it to the host, but needs `Secure`, which plain
/// HTTP on loopback cannot have; the name is the same either way.
pub(crate) const SESSION_COOKIE: &str = "concordat_session";
/// The cookie that pairs with the sign-in form's hidden field, before there is a session.
pub(crate) const SIGN_IN_COOKIE: &str = "concordat_sign_in";

/// Failed sign-ins allowed within [`THROTTLE_MINUTES`] before further attempts are refused.
pub(crate) const MAX_FAILURES: usize = 5;
pub(crate) const THROTTLE_MINUTES: i64 = 15;

fn argon2() -> Argon2<'static> {
    // OWASP's second recommended configuration for argon2id: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?
        .to_string())
}

pub(crate) fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A hash to check against when the user does not exist, so that a wrong user name takes as
/// long as a wrong password.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("not a real password").unwrap_or_default());

/// 32 random bytes as hex: session identifiers, CSRF tokens, bearer tokens.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's randomness");
    hex::encode(bytes)
}

/// A new bearer token: its secret (shown once, `cct_` and 64 hex digits) and the id people
/// see in lists and the audit log (`tok-` and 10 hex digits). Only the secret's hash is kept.
pub fn new_api_token() -> (String, String) {
    (
        format!("cct_{}", new_token()),
        format!("tok-{}", &new_token()[..10]),
    )
}

/// How a token or session identifier is kept: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.config.behind_tls {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// Who is asking, and what they hold in each partnership they can see.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub username: String,
    pub display_name: String,
    pub org_name: String,
    /// Roles per partnership key.
    pub roles: BTreeMap<String, Vec<Role>>,
    pub via: Via,
}

#[derive(Debug, Clone)]
pub(crate) enum Via {
    Session(SessionRow),
    Token { token_id: String },
}

impl Principal {
    /// The name the audit log records.
    pub(crate) fn actor(&self) -> Actor {
        match &self.via {
            Via::Session(_) => Actor::new(format!("web:{}", self.username)),
            Via::Token { token_id } => Actor::new(format!("api:{token_id}")),
        }
    }

    pub(crate) fn csrf_token(&self) -> &str {
        match &self.via {
            Via::Session(s) => &s.csrf_token,
            Via::Token { .. } => "",
        }
    }

    /// The roles held in `key`; a partnership with none is as if it did not exist.
    pub(crate) fn roles_in(&self, key: &str) -> Result<&[Role], WebError> {
        match self.roles.get(key) {
            Some(roles) if !roles.is_empty() => Ok(roles),
            _ => Err(WebError::NotFound),
        }
    }

    /// Refuses unless a role held in `key` allows `permission`: 404 where the partnership
    /// cannot be seen at all, 403 where it can but the role does not allow this.
    pub(crate) fn require(&self, key: &str, permission: Permission) -> Result<(), WebError> {
        let roles = self.roles_in(key)?;
        if concordat_core::access::allowed(roles, permission) {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }

    pub(crate) fn may(&self, key: &str, permission: Permission) -> bool {
        self.require(key, permission).is_ok()
    }

    /// The form's CSRF token must be this session's.
    pub(crate) fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        match &self.via {
            Via::Session(s) if same_secret(&s.csrf_token, sent) => Ok(()),
            _ => Err(WebError::BadCsrf),
        }
    }
}

async fn grants_of(
    state: &AppState,
    user: &UserRow,
) -> Result<BTreeMap<String, Vec<Role>>, WebError> {
    let mut roles: BTreeMap<String, Vec<Role>> = BTreeMap::new();
    for g in state.store.grants(Some(&user.username), None).await? {
        if let Some(role) = Role::parse(&g.role) {
            roles.entry(g.partnership_key).or_default().push(role);
        }
    }
    Ok(roles)
}

/// The signed-in user behind a request's session cookie, if any.
pub(crate) async fn session_principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, WebError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    // One query for the session and its user: every signed-in request starts here.
    let Some((session, user)) = state
        .store
        .session_user(&token_hash(token), &state.now())
        .await?
    else {
        return Ok(None);
    };
    let roles = grants_of(state, &user).await?;
    Ok(Some(Principal {
        username: user.username,
        display_name: user.display_name,
        org_name: user.org_name,
        roles,
        via: Via::Session(session),
    }))
}

/// A page that needs a signed-in user; without one, the browser goes to the sign-in page.
pub(crate) struct SignedIn(pub Principal);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        match session_principal(state, &parts.headers).await? {
            Some(p) => Ok(SignedIn(p)),
            None => Err(WebError::SignInFirst {
                next: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into()),
            }),
        }
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, WebError> {
        Ok(session_principal(state, &parts.headers)
            .await?
            .map(SignedIn))
    }
}

/// A machine client with a bearer token: one partnership, one role.
pub(crate) struct ApiClient(pub Principal);

impl FromRequestParts<AppState> for ApiClient {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(WebError::ApiUnauthorised)?;
        let row = state
            .store
            .api_token(&token_hash(token))
            .await?
            .ok_or(WebError::ApiUnauthorised)?;
        let role = Role::parse(&row.role).ok_or(WebError::ApiUnauthorised)?;
        Ok(ApiClient(Principal {
            username: format!("token:{}", row.token_id),
            display_name: row.name.clone(),
            org_name: String::new(),
            roles: BTreeMap::from([(row.partnership_key.clone(), vec![role])]),
            via: Via::Token {
                token_id: row.token_id,
            },
        }))
    }
}

/// What a sign-in attempt came to.
pub(crate) enum SignInOutcome {
    /// The new session's identifier, for the cookie.
    SignedIn {
        session_token: String,
    },
    WrongDetails,
    Throttled {
        minutes: i64,
    },
}

/// Sign-ins are checked one at a time, so that counting the recent failures and recording a
/// new one cannot interleave (parallel guesses would otherwise all see the same count).
static SIGN_IN_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Checks a user name and password; on success starts a session. Failures are recorded, for
/// user names that exist or not alike (so throttling says nothing about which exist), and
/// after [`MAX_FAILURES`] in [`THROTTLE_MINUTES`] the name refuses attempts for a while,
/// whatever the password.
pub(crate) async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<SignInOutcome, WebError> {
    let username = username.trim();
    if username.chars().any(char::is_control)
        || username.chars().count() > 200
        || password.chars().count() > concordat_core::access::MAX_PASSWORD_CHARS
    {
        return Ok(SignInOutcome::WrongDetails);
    }
    let _turn = SIGN_IN_TURN.lock().await;
    let now = (state.clock)();
    let window = jiff::SignedDuration::from_mins(THROTTLE_MINUTES);
    let window_start = now.checked_sub(window).unwrap_or(now);
    let failures = state
        .store
        .recent_sign_in_failures(username, &crate::time_text(window_start))
        .await?;
    if failures.len() >= MAX_FAILURES {
        // Free again once the oldest failure that counts is out of the window.
        let oldest = &failures[failures.len() - MAX_FAILURES];
        let minutes = oldest
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| t.checked_add(window).ok())
            .map(|free| (free.as_second() - now.as_second() + 59) / 60)
            .unwrap_or(THROTTLE_MINUTES)
            .clamp(1, THROTTLE_MINUTES);
        return Ok(SignInOutcome::Throttled { minutes });
    }
    let user = state.store.user(username).await?;
    let phc = user
        .as_ref()
        .map_or_else(|| DUMMY_HASH.clone(), |u| u.password_hash.clone());
    let typed = password.to_string();
    // Hashing takes tens of milliseconds of CPU: off the async workers.
    let matches = tokio::task::spawn_blocking(move || verify_password(&typed, &phc))
        .await
        .map_err(|e| WebError::Internal(anyhow::anyhow!("the password check stopped: {e}")))?;
    let ok = matches && user.is_some();
    let at = crate::time_text(now);
    // The person trying is not known: the audit names the sign-in form, and the name tried.
    let actor = Actor::new("web:sign-in");
    if !ok {
        state
            .store
            .change_accounts(
                &actor,
                &at,
                concordat_store::AccountChange::SignInFailed {
                    username: username.to_string(),
                },
            )
            .await?;
        return Ok(SignInOutcome::WrongDetails);
    }
    let actor = Actor::new(format!("web:{username}"));
    let session_token = new_token();
    let expires = now
        .checked_add(jiff::SignedDuration::from_hours(state.config.session_hours))
        .unwrap_or(now);
    state
        .store
        .change_accounts(
            &actor,
            &at,
            concordat_store::AccountChange::StartSession(SessionRow {
                token_hash: token_hash(&session_token),
                username: username.to_string(),
                csrf_token: new_token(),
                started_at: at.clone(),
                expires_at: crate::time_text(expires),
            }),
        )
        .await?;
    Ok(SignInOutcome::SignedIn { session_token })
}
