//! npm packages as build inputs, the way a lockfile pins them: one exact version, fetched from
//! registry.npmjs.org and checked against the `sha512-...` integrity npm publishes for it before
//! a byte of it is used; then the files wanted are copied out of the tarball.
//!
//! Tarballs are kept in `OUT_DIR/npm/`, so an incremental build does not fetch them again. For a
//! build without network, `NPM_TARBALL_DIR` names a folder holding them under the names
//! `npm pack` gives (`socket.io-admin-ui-0.5.1.tgz`); they are checked the same way.
//!
//! Shared by every build step that takes something from npm; what to take and what to make of it
//! is theirs (see `admin_ui.rs`).

use std::{
    env, fs,
    io::Read,
    path::{Component, Path, PathBuf},
    time::Duration,
};

use base64::Engine as _;
use sha2::{Digest, Sha512};

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
        let base = self.name.rsplit('/').next().unwrap_or(self.name);
        format!("https://registry.npmjs.org/{}/-/{base}-{}.tgz", self.name, self.version)
    }

    /// The file name `npm pack` gives the tarball: the scope's `@` dropped and `/` made `-`.
    fn file_name(&self) -> String {
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
            Err(format!(
                "{}@{}: the tarball's sha512 is {actual}, not the pinned {expected}: refusing to use it",
                self.name, self.version
            ))
        }
    }

    /// The verified tarball: from the build cache, `NPM_TARBALL_DIR`, or the registry.
    pub fn fetch(&self) -> Vec<u8> {
        println!("cargo:rerun-if-env-changed=NPM_TARBALL_DIR");
        let cache = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("npm");
        let cached = cache.join(self.file_name());
        if let Ok(bytes) = fs::read(&cached)
            && self.verify(&bytes).is_ok()
        {
            return bytes;
        }
        let bytes = match env::var_os("NPM_TARBALL_DIR") {
            Some(dir) => {
                let path = Path::new(&dir).join(self.file_name());
                fs::read(&path).unwrap_or_else(|e| {
                    panic!(
                        "NPM_TARBALL_DIR: cannot read {} ({e}); `npm pack {}@{}` makes it",
                        path.display(),
                        self.name,
                        self.version
                    )
                })
            }
            None => self.download(),
        };
        if let Err(e) = self.verify(&bytes) {
            panic!("{e}");
        }
        fs::create_dir_all(&cache).and_then(|()| fs::write(&cached, &bytes)).unwrap_or_else(|e| {
            println!("cargo:warning=could not cache {}: {e}", cached.display());
        });
        bytes
    }

    fn download(&self) -> Vec<u8> {
        let url = self.url();
        // The system's CA store, as npm and cargo trust it (a proxy's own CA included).
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        let agent: ureq::Agent =
            ureq::Agent::config_builder().tls_config(tls).timeout_global(Some(Duration::from_secs(300))).build().into();
        let fail = |e: &dyn std::fmt::Display| -> ! {
            panic!(
                "cannot download {url}: {e}\n(without network, set NPM_TARBALL_DIR to a folder holding {}, made by `npm pack {}@{}`)",
                self.file_name(),
                self.name,
                self.version
            )
        };
        let mut response = agent.get(&url).call().unwrap_or_else(|e| fail(&e));
        response.body_mut().with_config().limit(64 * 1024 * 1024).read_to_vec().unwrap_or_else(|e| fail(&e))
    }
}

/// Copies files out of an npm tarball (gzip'd tar, every path under `package/`): `place` gets
/// each regular file's path inside the package and says where it goes under `dest`, or `None` to
/// skip it. Returns the paths written, relative to `dest`, in tarball order.
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
