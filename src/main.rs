//! The `regate` binary: parses the command line and hands off to the library's commands. Errors that end
//! a command print on stderr and exit with code 2.

use clap::{Parser, Subcommand};

use regate::cli;

#[derive(Parser)]
#[command(
    name = "regate",
    version,
    about = "Policy-as-code admission webhook and CI checker for multi-tenant Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Audit the objects stored in a cluster against the policies (one run, paginated lists).
    Audit(cli::audit::AuditArgs),
    /// Check manifests (files, directories or `-` for stdin) against the policies, as CI does.
    Check(cli::check::CheckArgs),
    /// Answer one AdmissionReview exactly as the webhook would.
    Eval(cli::eval::EvalArgs),
    /// Run the HTTPS validating and mutating admission webhook.
    Serve(Box<cli::serve::ServeArgs>),
    /// Run the Rego unit tests (`test_*` rules in `*_test.rego`) of bundle directories, like `opa test`.
    Test(cli::test::TestArgs),
    /// Resolve images at their registry and verify their cosign signatures against configured keys.
    VerifyImage(cli::verify_image::VerifyImageArgs),
}

fn main() {
    regate::memory::configure_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    let result = match &cli.command {
        Command::Audit(args) => cli::audit::run(args),
        Command::Check(args) => cli::check::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Serve(args) => cli::serve::run(args),
        Command::Test(args) => cli::test::run(args),
        Command::VerifyImage(args) => cli::verify_image::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}
