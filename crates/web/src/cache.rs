//! What the pages read most, kept between requests: each partnership's agreement model and
//! its funds' monitoring. An entry is good while the partnership's audit head is where it was
//! when the entry was made; every change to a partnership goes through the store's write path
//! and moves its head, so one small query per request says whether the cache is current.
//! The head is read before the data, so an entry is never older than the head it is kept
//! under.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use concordat_app::FundMonitoring;
use concordat_core::Period;
use concordat_core::agreement::{Agreement, Fund};
use concordat_core::monitor::{Dimension, ForecastMethod};

use crate::AppState;
use crate::error::WebError;

/// Entries kept of each kind before the cache starts again from empty.
const MAX_ENTRIES: usize = 512;

#[derive(Default)]
pub(crate) struct Cache {
    agreements: Mutex<HashMap<String, (i64, Arc<Agreement>)>>,
    monitoring: Mutex<HashMap<MonitoringKey, (i64, Arc<FundMonitoring>)>>,
    /// Rendered parts of pages that are the same for every reader, by page and query.
    fragments: Mutex<HashMap<String, (i64, Arc<String>)>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct MonitoringKey {
    partnership: String,
    fund: String,
    period: Period,
    by: &'static str,
    method: &'static str,
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut map = map.lock().expect("cache lock");
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, value);
}

/// The partnership's current agreement and its audit head, or `None` if there is none.
pub(crate) async fn agreement(
    state: &AppState,
    key: &str,
) -> Result<Option<(i64, Arc<Agreement>)>, WebError> {
    let head = state.store.audit_head_seq(key).await?;
    if let Some((seq, a)) = state.cache.agreements.lock().expect("cache lock").get(key)
        && *seq == head
    {
        return Ok(Some((head, a.clone())));
    }
    let Some(stored) = state.store.get_agreement(key).await? else {
        return Ok(None);
    };
    let a: Agreement = serde_json::from_value(stored.model_json)
        .map_err(|e| WebError::Internal(anyhow::anyhow!("stored agreement {key}: {e}")))?;
    let a = Arc::new(a);
    remember(&state.cache.agreements, key.to_string(), (head, a.clone()));
    Ok(Some((head, a)))
}

/// A fund's monitoring, from the cache while the partnership is unchanged. `head` and
/// `agreement` are what [`agreement`] answered: the agreement was read at or after that head.
pub(crate) async fn monitoring(
    state: &AppState,
    head: i64,
    agreement: &Agreement,
    fund: &Fund,
    period: Period,
    method: ForecastMethod,
    by: Dimension,
) -> Result<Arc<FundMonitoring>, WebError> {
    let key = MonitoringKey {
        partnership: agreement.id.clone(),
        fund: fund.id.clone(),
        period,
        by: by.as_str(),
        method: method.as_str(),
    };
    if let Some((seq, m)) = state.cache.monitoring.lock().expect("cache lock").get(&key)
        && *seq == head
    {
        return Ok(m.clone());
    }
    // The agreement was read at or after `head` and the ledger is read now, so the entry is
    // never older than the head it is kept under.
    let m = Arc::new(
        concordat_app::fund_monitoring(state.store.as_ref(), agreement, fund, period, method, by)
            .await?,
    );
    remember(&state.cache.monitoring, key, (head, m.clone()));
    Ok(m)
}

/// A rendered part of a page, if it was made at this head.
pub(crate) fn fragment(state: &AppState, head: i64, key: &str) -> Option<Arc<String>> {
    match state.cache.fragments.lock().expect("cache lock").get(key) {
        Some((seq, html)) if *seq == head => Some(html.clone()),
        _ => None,
    }
}

/// Keeps a rendered part of a page made from data read at or after `head`.
pub(crate) fn remember_fragment(
    state: &AppState,
    head: i64,
    key: String,
    html: Arc<String>,
) -> Arc<String> {
    remember(&state.cache.fragments, key, (head, html.clone()));
    html
}
