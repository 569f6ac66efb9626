//! npm packages as build inputs, the way a lockfile pins them: one exact version, fetched from
//! the npm registry and checked against the `sha512-...` integrity npm publishes for it before a
//! byte of it is used; then the files wanted are copied out of the tarball.
//!
//! A tarball is looked for in `NPM_TARBALL_DIR` (a folder of tarballs under the names `npm pack`
//! gives, such as `socket.io-admin-ui-0.5.1.tgz`, for builds without network), then in
//! `npm-cache/` in the target folder (shared by every profile, so rebuilds do not download again),
//! then downloaded from `NPM_CONFIG_REGISTRY` (default registry.npmjs.org). The download trusts
//! the machine's CA store, as npm and curl do (a TLS-inspecting proxy's CA included).
//!
//! Fetching can fail (no network): each build step decides what the binary does without the
//! package ([`unavailable`] says so in the build's output). Shared by every build step that takes
//! something from npm; what to take and what to make of it is theirs.

use std::{
    env, fs,
    io::Read,
    path::{Component, Path, PathBuf},
    time::Duration,
};

use base64::Engine as _;
use sha2::{Digest, Sha512};

/// More than any tarball taken here will ever be: a bound on what a broken mirror can make us read.
const MAX_TARBALL_BYTES: u64 = 64 << 20;

/// One pinned package version.
pub struct Package {
    /// The package name, scope included (`@socket.io/admin-ui`).
    pub name: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// `dist.integrity` of that version in the registry (`npm view NAME@VERSION dist.integrity`).
    pub integrity: &'static str,
}

impl Package {
    /// The tarball's address in the registry.
    fn url(&self) -> String {
        let registry = env::var("NPM_CONFIG_REGISTRY").unwrap_or_else(|_| "https://registry.npmjs.org/".into());
        let base = self.name.rsplit('/').next().unwrap_or(self.name);
        format!("{}/{}/-/{base}-{}.tgz", registry.trim_end_matches('/'), self.name, self.version)
    }

    /// The file name `npm pack` gives the tarball: the scope's `@` dropped and `/` made `-`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name.trim_start_matches('@').replace('/', "-"), self.version)
    }

    /// Whether `bytes` are the published tarball.
    fn verify(&self, bytes: &[u8]) -> Result<(), String> {
        let expected = self
            .integrity
            .strip_prefix("sha512-")
            .ok_or_else(|| format!("{}: only sha512 integrity values are accepted", self.name))?;
        let actual = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes));
        if actual == expected {
            Ok(())
        } else {
            Err(format!("the tarball's sha512 is {actual}, not the pinned {expected}: refusing to use it"))
        }
    }

    /// The verified tarball, or why there is none.
    pub fn fetch(&self) -> Result<Vec<u8>, String> {
        println!("cargo:rerun-if-env-changed=NPM_TARBALL_DIR");
        println!("cargo:rerun-if-env-changed=NPM_CONFIG_REGISTRY");
        let what = format!("{}@{}", self.name, self.version);
        if let Some(dir) = env::var_os("NPM_TARBALL_DIR") {
            let path = Path::new(&dir).join(self.file_name());
            if let Ok(bytes) = fs::read(&path) {
                self.verify(&bytes).map_err(|e| format!("{what} in NPM_TARBALL_DIR ({}): {e}", path.display()))?;
                return Ok(bytes);
            }
        }
        let cached = cache_dir().join(self.file_name());
        // A damaged cache is fetched again below and replaced.
        if let Ok(bytes) = fs::read(&cached)
            && self.verify(&bytes).is_ok()
        {
            return Ok(bytes);
        }
        let url = self.url();
        let bytes = download(&url).map_err(|e| format!("cannot download {url}: {e}"))?;
        self.verify(&bytes).map_err(|e| format!("{what} from {url}: {e}"))?;
        // The cache only saves a download: failing to write it is not an error.
        let _ = fs::create_dir_all(cache_dir()).and_then(|()| fs::write(&cached, &bytes));
        Ok(bytes)
    }
}

/// Says in the build's output that `what` is not built in, and why, and makes cargo run the
/// build script again next time (a path that never exists is always out of date).
pub fn unavailable(what: &str, packages: &[&Package], reason: &str) {
    let names: Vec<String> = packages.iter().map(|p| format!("{}@{}", p.name, p.version)).collect();
    let files: Vec<String> = packages.iter().map(|p| p.file_name()).collect();
    println!(
        "cargo:warning={what} is not built in: {reason}. Build with access to the npm registry, or set \
         NPM_TARBALL_DIR to a folder holding {} (`npm pack {}`)",
        files.join(" and "),
        names.join(" ")
    );
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed={}", out_dir.join("npm-package-missing").display());
}

/// `npm-cache/` in the target folder, shared by every profile (`OUT_DIR` is
/// `<target>/<profile>/build/<package>-<hash>/out`); `OUT_DIR` itself when laid out otherwise.
fn cache_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut ancestors = out_dir.ancestors();
    match (ancestors.nth(2), ancestors.nth(1)) {
        (Some(build), Some(target)) if build.file_name().is_some_and(|n| n == "build") => target.join("npm-cache"),
        _ => out_dir.join("npm"),
    }
}

fn download(url: &str) -> Result<Vec<u8>, String> {
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    response.body_mut().as_reader().take(MAX_TARBALL_BYTES).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Copies files out of an npm tarball (gzip'd tar, every path under `package/`), which
/// [`Package::fetch`] has verified: `place` gets each regular file's path inside the package and
/// says where it goes under `dest`, or `None` to skip it. Returns the paths written, relative to
/// `dest`, in tarball order.
pub fn unpack(tarball: &[u8], dest: &Path, mut place: impl FnMut(&str) -> Option<String>) -> Vec<String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let mut written = Vec::new();
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("a readable tar entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().expect("an entry path").to_string_lossy().into_owned();
        let Some(inner) = path.strip_prefix("package/") else { continue };
        let Some(target) = place(inner) else { continue };
        // The target comes from our own mapping, but never let it leave `dest`.
        assert!(
            Path::new(&target).components().all(|c| matches!(c, Component::Normal(_))),
            "refusing to unpack `{inner}` to `{target}`"
        );
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("a readable tar entry");
        let out = dest.join(&target);
        fs::create_dir_all(out.parent().expect("a file has a parent")).expect("an output folder");
        fs::write(&out, bytes).expect("a written file");
        written.push(target);
    }
    written
}
