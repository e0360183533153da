//! Embeds the sample events (`events/**/*.json`) in the `reflex` binary, so that `reflex demo`
//! works wherever the binary is installed (`cargo install --path cli`) and from any working
//! directory: generates `$OUT_DIR/samples.rs`, one `include_bytes!` per file, sorted by name.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Every `.json` file under `dir`, as (name relative to `root` with `/` separators, path).
fn collect(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|x| x == "json") {
            let name = path
                .strip_prefix(root)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let events = manifest.join("..").join("events").canonicalize()?;
    // A directory here makes cargo look at every file under it, added and removed ones included.
    println!("cargo:rerun-if-changed={}", events.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    collect(&events, &events, &mut files)?;
    files.sort();
    let mut code = String::from("&[\n");
    for (name, path) in &files {
        let path = path.to_str().ok_or("a sample's path is not UTF-8")?;
        writeln!(code, "    ({name:?}, include_bytes!({path:?})),")?;
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("samples.rs");
    std::fs::write(out, code)?;
    Ok(())
}
