// `sqlx::migrate!()` reads migrations/ at compile time: rebuild when a migration is added.
// The challenges in challenges/ are built into the binary: this lists every folder's files
// (its top level and examples/) for `include_str!`, so adding a challenge needs no Rust.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=challenges");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("challenges");
    let mut folders: Vec<_> = std::fs::read_dir(&root)
        .expect("challenges/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("challenge.toml").is_file())
        .collect();
    folders.sort();
    let mut out = String::from("pub const FOLDERS: &[(&str, &[(&str, &str)])] = &[\n");
    for folder in folders {
        let id = folder.file_name().unwrap().to_string_lossy().into_owned();
        println!("cargo:rerun-if-changed={}", folder.display());
        let _ = writeln!(out, "    ({id:?}, &[");
        for sub in ["", "examples"] {
            let Ok(entries) = std::fs::read_dir(folder.join(sub)) else { continue };
            let mut files: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
            files.sort();
            if !sub.is_empty() {
                println!("cargo:rerun-if-changed={}", folder.join(sub).display());
            }
            for file in files {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                let relative = if sub.is_empty() { name } else { format!("{sub}/{name}") };
                let _ = writeln!(out, "        ({relative:?}, include_str!({:?})),", file.display().to_string());
            }
        }
        out.push_str("    ]),\n");
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join("built_in_challenges.rs");
    std::fs::write(target, out).unwrap();
}
