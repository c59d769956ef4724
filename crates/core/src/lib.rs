//! Concordat's domain: exact money, the financial calendar, the agreement and its rules.
//! Nothing here reads a file, a clock or a database: time comes in as a value.

pub mod access;
pub mod agreement;
pub mod budget;
pub mod calendar;
pub mod governance;
pub mod instalments;
pub mod ledger;
pub mod money;
pub mod monitor;
pub mod notice;
pub mod obligations;
pub mod percent;
pub mod proceedings;
pub mod risk_share;
pub mod statement;
pub mod validate;

pub use agreement::Agreement;
pub use calendar::{FinancialYear, Period, Quarter};
pub use money::{Money, allocate};
pub use percent::Percent;
pub use validate::{Finding, Rule, Severity, validate};
