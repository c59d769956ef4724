//! A database for one test: a SQLite file in a scratch folder, or a fresh PostgreSQL
//! database on the test server, created for the test and dropped when it ends.
//!
//! The PostgreSQL server is `CONCORDAT_TEST_POSTGRES` (default: the `postgres` user on
//! 127.0.0.1:5432). Without a server the PostgreSQL cases are skipped with a loud message,
//! unless `CONCORDAT_REQUIRE_POSTGRES=1` (as CI sets it), when they fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{Connection, Executor};

/// The repository's root folder (where the examples and docs are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository's root")
}

/// A scratch folder for one test, emptied first.
pub fn scratch(prefix: &str, name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("concordat-{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// One database for one test, dropped afterwards.
pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.take() {
            // A runtime of its own: the test's may already be gone, or be the caller.
            let dropped = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&server).await {
                        let _ = c
                            .execute(
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await;
                    }
                });
            });
            let _ = dropped.join();
        }
    }
}

/// A SQLite database file in `dir`.
pub fn sqlite_db(dir: &Path) -> TestDb {
    TestDb {
        url: format!("sqlite:{}", dir.join("concordat.db").display()),
        postgres: None,
    }
}

/// A fresh PostgreSQL database, or `None` (said loudly) when there is no server and
/// `CONCORDAT_REQUIRE_POSTGRES=1` is not set.
pub fn postgres_db(prefix: &str) -> Option<TestDb> {
    let server = std::env::var("CONCORDAT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let required = std::env::var("CONCORDAT_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let name = format!(
        "concordat_{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos()
    );
    let create = {
        let server = server.clone();
        let name = name.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                let mut c = tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::PgConnection::connect(&server),
                )
                .await
                .map_err(|_| "no answer within 10 s".to_string())?
                .map_err(|e| e.to_string())?;
                c.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            })
        })
    };
    match create.join().expect("the thread creating the database") {
        Ok(()) => {
            let (base, query) = match server.split_once('?') {
                Some((b, q)) => (b.to_string(), format!("?{q}")),
                None => (server.clone(), String::new()),
            };
            let authority = base.find("://").map_or(0, |i| i + 3);
            let root = match base[authority..].find('/') {
                Some(slash) => base[..authority + slash].to_string(),
                None => base.clone(),
            };
            Some(TestDb {
                url: format!("{root}/{name}{query}"),
                postgres: Some((server, name)),
            })
        }
        Err(why) if required => panic!(
            "PostgreSQL not reachable ({why}), and CONCORDAT_REQUIRE_POSTGRES=1 says it must be"
        ),
        Err(why) => {
            eprintln!("\n*** SKIPPED: PostgreSQL not reachable ({why}) ***\n");
            None
        }
    }
}
