//! Build script: records the git commit for `rappel --version` and the `rappel_build_info`
//! metric; "unknown" outside a git checkout (a source tarball, a Docker context without .git).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RAPPEL_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (checkout) and the branch it points to (commit).
    // A path that does not exist would make cargo rerun this script on every build.
    let watch = |path: Option<String>| {
        if let Some(path) = path.filter(|path| std::path::Path::new(path).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    };
    watch(git(&["rev-parse", "--git-path", "HEAD"]));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &branch]));
    }
    println!("cargo:rerun-if-changed=build.rs");
}
