//! Build-time inputs of the binary:
//!
//! - The namespace specs in `namespaces/` are compiled in (`include_dir!`), which rustc does not
//!   track: rebuild whenever that folder changes.
//! - socket.io-client's browser bundle, which the gateway serves at `{SOCKETIO_PATH}/socket.io.js`
//!   as Node's socket.io does (`serveClient`). The project commits no third-party code, so the
//!   bundle comes from its npm package at a pinned version, checked against the registry's
//!   pinned sha512 integrity, extracted into `OUT_DIR` and embedded. The tarball is looked for in
//!   `SOCKETIO_CLIENT_TARBALL` (a `.tgz` already on disk, for offline builds), then in a cache
//!   under the target folder (so neither rebuilds nor other profiles download it again), then
//!   downloaded from the npm registry (`NPM_CONFIG_REGISTRY`, default registry.npmjs.org).
//!
//! Without the bundle (offline, registry down) the build still succeeds: it warns, and the
//! gateway answers 404 with the reason at the bundle's paths. The next build tries again.

use std::{
    env, fs,
    io::Read,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine as _;
use sha2::{Digest, Sha512};

/// The socket.io-client release served; the one `tests/js` runs (its package-lock.json).
const VERSION: &str = "4.8.4";
/// The registry's `dist.integrity` of that release's tarball.
const INTEGRITY: &str =
    "sha512-7wjKAvVXYOJsbmUgkWbnhPD4bFpkqrUR0++XOjpGFmqDqsqV1CI93VTraeExLxpjxEqrWgFoSRZu1ihjLWfkAA==";
/// The files of the tarball's `dist/` that are served, as Node's socket.io serves them.
const FILES: &[&str] = &["socket.io.js", "socket.io.js.map", "socket.io.min.js", "socket.io.min.js.map"];
/// More than the tarball (330 KB) will ever be; a bound on what a broken mirror can make us read.
const MAX_TARBALL_BYTES: u64 = 16 << 20;

fn main() {
    println!("cargo:rerun-if-changed=namespaces");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOCKETIO_CLIENT_TARBALL");
    println!("cargo:rerun-if-env-changed=NPM_CONFIG_REGISTRY");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let generated = match bundle(&out_dir) {
        Ok(files) => embedded(&files),
        Err(reason) => {
            println!(
                "cargo:warning=socket.io-client {VERSION}'s browser bundle is not built in: {reason}. The gateway will answer \
                 404 at {{SOCKETIO_PATH}}/socket.io.js; build with access to the npm registry, or set \
                 SOCKETIO_CLIENT_TARBALL to a copy of socket.io-client-{VERSION}.tgz"
            );
            // A path that never exists makes cargo run this script again on the next build.
            println!("cargo:rerun-if-changed={}", out_dir.join("socket.io-client-missing").display());
            missing(&reason)
        }
    };
    fs::write(out_dir.join("socketio_client.rs"), generated).expect("OUT_DIR is writable");
}

/// Extracts the served files into `OUT_DIR/socket.io-client/`, returning their paths.
fn bundle(out_dir: &Path) -> Result<Vec<(&'static str, PathBuf)>, String> {
    let tarball = tarball(out_dir)?;
    let dir = out_dir.join("socket.io-client");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball.as_slice()));
    let mut found = Vec::new();
    for entry in archive.entries().map_err(|e| format!("the tarball is unreadable: {e}"))? {
        let mut entry = entry.map_err(|e| format!("the tarball is unreadable: {e}"))?;
        let path = entry.path().map_err(|e| format!("the tarball is unreadable: {e}"))?.into_owned();
        let Some(name) = FILES.iter().find(|f| path == Path::new("package/dist").join(f)) else { continue };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let target = dir.join(name);
        fs::write(&target, bytes).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        found.push((*name, target));
    }
    if let Some(absent) = FILES.iter().find(|f| !found.iter().any(|(name, _)| name == *f)) {
        return Err(format!("the tarball has no dist/{absent}"));
    }
    Ok(found)
}

/// The verified tarball: from `SOCKETIO_CLIENT_TARBALL`, the cache, or the registry.
fn tarball(out_dir: &Path) -> Result<Vec<u8>, String> {
    if let Some(path) = env::var_os("SOCKETIO_CLIENT_TARBALL") {
        let path = PathBuf::from(path);
        let bytes = fs::read(&path).map_err(|e| format!("SOCKETIO_CLIENT_TARBALL {}: {e}", path.display()))?;
        verify(&bytes).map_err(|e| format!("SOCKETIO_CLIENT_TARBALL {}: {e}", path.display()))?;
        return Ok(bytes);
    }
    let cached = cache_dir(out_dir).join(format!("socket.io-client-{VERSION}.tgz"));
    // A damaged cache is fetched again below and replaced.
    if let Ok(bytes) = fs::read(&cached)
        && verify(&bytes).is_ok()
    {
        return Ok(bytes);
    }
    let registry = env::var("NPM_CONFIG_REGISTRY").unwrap_or_else(|_| "https://registry.npmjs.org/".into());
    let url = format!("{}/socket.io-client/-/socket.io-client-{VERSION}.tgz", registry.trim_end_matches('/'));
    let bytes = download(&url).map_err(|e| format!("downloading {url}: {e}"))?;
    verify(&bytes).map_err(|e| format!("{url}: {e}"))?;
    if let Some(parent) = cached.parent() {
        // The cache only saves a download: failing to write it is not an error.
        let _ = fs::create_dir_all(parent).and_then(|()| fs::write(&cached, &bytes));
    }
    Ok(bytes)
}

/// Where downloads are kept: `npm-cache/` in the target folder, shared by every profile (`OUT_DIR`
/// is `<target>/<profile>/build/<package>-<hash>/out`); `OUT_DIR` itself when laid out otherwise.
fn cache_dir(out_dir: &Path) -> PathBuf {
    let mut ancestors = out_dir.ancestors();
    match (ancestors.nth(2), ancestors.nth(1)) {
        (Some(build), Some(target)) if build.file_name().is_some_and(|n| n == "build") => target.join("npm-cache"),
        _ => out_dir.to_path_buf(),
    }
}

fn download(url: &str) -> Result<Vec<u8>, String> {
    // The platform's trust store, not a built-in list: machines behind a TLS-inspecting proxy
    // trust its CA there, as npm and curl do.
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    response.body_mut().as_reader().take(MAX_TARBALL_BYTES).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Checks the bytes against the pinned `sha512-<base64>` integrity.
fn verify(bytes: &[u8]) -> Result<(), String> {
    let actual = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes)));
    if actual == INTEGRITY { Ok(()) } else { Err(format!("integrity mismatch: expected {INTEGRITY}, got {actual}")) }
}

/// The Rust source embedding the files.
fn embedded(files: &[(&str, PathBuf)]) -> String {
    let entries: String = files
        .iter()
        .map(|(name, path)| format!("    ({name:?}, include_bytes!({:?}) as &[u8]),\n", path.display().to_string()))
        .collect();
    format!(
        "/// The socket.io-client release embedded.\npub const VERSION: &str = {VERSION:?};\n\
         /// The served files by name, or why they are missing.\n\
         pub const FILES: Result<&[(&str, &[u8])], &str> = Ok(&[\n{entries}]);\n"
    )
}

/// The Rust source saying why there is no bundle.
fn missing(reason: &str) -> String {
    format!(
        "/// The socket.io-client release that should have been embedded.\npub const VERSION: &str = {VERSION:?};\n\
         /// The served files by name, or why they are missing.\n\
         pub const FILES: Result<&[(&str, &[u8])], &str> = Err({reason:?});\n"
    )
}
