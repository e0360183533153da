//! The local AWS emulator for the demo: started through the project's `scripts/moto` (which
//! installs the pinned moto into the checkout's venv) and stopped again when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Emulator {
    script: PathBuf,
    state: PathBuf,
    pub endpoint: String,
}

/// `scripts/moto` of the checkout this binary was built from.
pub fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto")
}

impl Emulator {
    /// Install (first run only) and start moto on a free loopback port; wait until it answers.
    pub fn start() -> Result<Emulator, String> {
        let script = script_path();
        if !script.exists() {
            return Err(format!(
                "{} not found: `reflex demo` without AWS_ENDPOINT_URL needs the Reflex checkout it was built from",
                script.display()
            ));
        }
        let state = std::env::temp_dir().join(format!("reflex-demo-{}", std::process::id()));
        let out = Command::new(&script)
            .arg("start")
            .arg(&state)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let endpoint = stdout
            .lines()
            .find_map(|l| l.strip_prefix("AWS_ENDPOINT_URL="))
            .map(str::to_string)
            .filter(|_| out.status.success())
            .ok_or_else(|| {
                format!(
                    "the emulator did not start (see {}/moto.log)",
                    state.display()
                )
            })?;
        Ok(Emulator {
            script,
            state,
            endpoint,
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let stopped = Command::new(&self.script)
            .arg("stop")
            .arg(&self.state)
            .stdout(Stdio::null())
            .status();
        if !matches!(stopped, Ok(s) if s.success()) {
            eprintln!(
                "warning: could not stop the emulator started for the demo ({})",
                self.state.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
