//! Concordat's ledger engine: postings in, exact totals out. It reads from any `std::io::Read`
//! the caller hands it and knows no files, databases or clocks.

pub mod generate;
pub mod summarize;

pub use summarize::{
    Dimension, Summary, SummaryError, SummaryRow, summarize_bytes, summarize_reader,
};
