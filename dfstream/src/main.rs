//! The `dfstream` command; see the library docs.

fn main() -> std::process::ExitCode {
    dfstream::main()
}
