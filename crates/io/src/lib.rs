//! Formats at the edge of Concordat: files in, domain values out, with every error placed at
//! its file, line and column.

pub mod agreement_file;
pub mod ledger_mapping;
pub mod ledger_read;

pub use agreement_file::{
    AgreementFile, LocatedFinding, closest, parse_agreement, read_agreement_file,
};
