//! Standard output for every command. Writing to a pipe whose reader has gone
//! (`concordat audit log | head`) fails with a broken pipe, which `println!` turns into a
//! panic; here it ends the program quietly and successfully instead, as Unix tools do: the
//! reader has had all it wanted.

use std::fmt;
use std::io::{self, Write};

/// Writes to standard output, like `print!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::print(format_args!($($arg)*))
    };
}

/// Writes a line to standard output, like `println!`.
macro_rules! outln {
    () => {
        $crate::output::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Standard output, locked; a closed pipe ends the program quietly (exit status 0).
pub(crate) struct Stdout(io::StdoutLock<'static>);

impl Stdout {
    pub(crate) fn lock() -> Stdout {
        Stdout(io::stdout().lock())
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(stop_if_closed)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(stop_if_closed)
    }
}

/// Ends the program if `e` says the reader of standard output has gone; gives any other
/// error back.
fn stop_if_closed(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    e
}

/// What `out!` and `outln!` call. Any failure other than a closed pipe (a full disk under
/// `> file`) is reported and ends the program, since the output is then incomplete.
pub(crate) fn print(args: fmt::Arguments<'_>) {
    if let Err(e) = Stdout::lock().write_fmt(args) {
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}
