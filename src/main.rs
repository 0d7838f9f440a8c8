//! The `firebreak` binary: parses the command line and hands over to [`firebreak::cli`].

fn main() -> std::process::ExitCode {
    firebreak::cli::main()
}
