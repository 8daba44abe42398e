//! Command-line front doors, one module per subcommand; argument handling and wiring only. Every
//! command returns its exit code; errors that end a command map to exit code 2 in `main`.

pub mod audit;
pub mod check;
pub mod eval;
pub mod serve;
pub mod test;
pub mod verify_image;

use std::path::PathBuf;

use clap::Args;

use crate::policy::{BackendChoice, LoadOptions};

/// Options every command that evaluates policies shares.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Policy bundle directory layered over the bundled library (repeatable; later wins per file).
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// regate.yaml layered over the bundles' configuration (repeatable).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Do not load the bundled policy library.
    #[arg(long = "no-bundled")]
    pub no_bundled: bool,
    /// Evaluate every policy on the interpreter instead of the compiled VM (for comparisons).
    #[arg(long = "interpreter", hide = true)]
    pub interpreter: bool,
}

impl PolicyArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            embedded: !self.no_bundled,
            policy_dirs: self.policies.clone(),
            config_files: self.config.clone(),
            backend: if self.interpreter {
                BackendChoice::Interpreter
            } else {
                BackendChoice::Auto
            },
        }
    }
}

/// Prints what loading the policy set left out (`PolicySet::notes`) on stderr, one `note:` line each.
pub(crate) fn print_load_notes(set: &crate::policy::PolicySet) {
    for note in &set.notes {
        eprintln!("note: {note}");
    }
}
