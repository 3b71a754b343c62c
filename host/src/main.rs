//! The `warden` binary: the command line at the edge of the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
