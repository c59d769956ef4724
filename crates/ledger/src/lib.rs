//! Concordat's ledger engine: postings in, exact totals out. It reads what the caller hands it
//! (any `std::io::Read`, or an open file, read at offsets) and knows no paths, databases or
//! clocks.

pub mod generate;
pub mod summarize;

pub use summarize::{
    Dimension, Summary, SummaryError, SummaryRow, summarize_bytes, summarize_reader,
};
