//! The vigil daemon; everything lives in [`vigil_daemon::vigild`].

fn main() -> std::process::ExitCode {
    vigil_daemon::vigild::main()
}
