//! The vigil operator CLI; everything lives in [`vigil_daemon::ctl`].

fn main() -> std::process::ExitCode {
    vigil_daemon::ctl::main()
}
