//! The kycdash binary: parse the command line, run the chosen mode, report errors readably.

use clap::Parser;
use kycdash::cli::Cli;

fn main() {
    let _cli = Cli::parse();
    println!(
        "kycdash {}: the domain core (customers, documents, compliance checks, webhook events and \
         the onboarding workflow) is built and tested; the sandbox and the dashboard are not built yet.",
        env!("CARGO_PKG_VERSION")
    );
}
