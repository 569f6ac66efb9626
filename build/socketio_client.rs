//! socket.io-client's browser bundle, which the gateway serves at `{SOCKETIO_PATH}/socket.io.js`
//! as Node's socket.io does (`serveClient`; see `src/page/bundle.rs`): `dist/socket.io(.min).js`
//! and their source maps from the npm package, at the release `tests/js` runs.
//!
//! Output in `OUT_DIR`: the files under `socket.io-client/`, and `socketio_client.rs`, which
//! embeds them, or says why there are none (the build still succeeds; the gateway then answers
//! 404 with the reason at the bundle's paths).

use std::{env, path::PathBuf};

use crate::npm::{self, Package};

/// The release served: the one `tests/js` runs (its package-lock.json).
const CLIENT: Package = Package {
    name: "socket.io-client",
    version: "4.8.4",
    integrity: "sha512-7wjKAvVXYOJsbmUgkWbnhPD4bFpkqrUR0++XOjpGFmqDqsqV1CI93VTraeExLxpjxEqrWgFoSRZu1ihjLWfkAA==",
};

/// The files of the tarball's `dist/` that are served, as Node's socket.io serves them.
const FILES: &[&str] = &["socket.io.js", "socket.io.js.map", "socket.io.min.js", "socket.io.min.js.map"];

/// Builds `OUT_DIR/socket.io-client/` and `OUT_DIR/socketio_client.rs`.
pub fn build() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = out_dir.join("socket.io-client");
    let generated = match CLIENT.fetch().and_then(|tarball| {
        let written = npm::unpack(&tarball, &dir, |path| {
            path.strip_prefix("dist/").filter(|f| FILES.contains(f)).map(str::to_string)
        });
        match FILES.iter().find(|f| !written.iter().any(|w| w == *f)) {
            Some(absent) => Err(format!("the tarball has no dist/{absent}")),
            None => Ok(written),
        }
    }) {
        Ok(files) => embedded(&dir, &files),
        Err(reason) => {
            npm::unavailable(&format!("socket.io-client {}'s browser bundle", CLIENT.version), &[&CLIENT], &reason);
            missing(&reason)
        }
    };
    std::fs::write(out_dir.join("socketio_client.rs"), generated).expect("OUT_DIR is writable");
}

/// The Rust source embedding the files.
fn embedded(dir: &std::path::Path, files: &[String]) -> String {
    let entries: String = files
        .iter()
        .map(|name| format!("    ({name:?}, include_bytes!({:?}) as &[u8]),\n", dir.join(name).display().to_string()))
        .collect();
    format!(
        "/// The socket.io-client release embedded.\npub(crate) const VERSION: &str = {:?};\n\
         /// The served files by name, or why they are missing.\n\
         pub(crate) const FILES: Result<&[(&str, &[u8])], &str> = Ok(&[\n{entries}]);\n",
        CLIENT.version
    )
}

/// The Rust source saying why there is no bundle.
fn missing(reason: &str) -> String {
    format!(
        "/// The socket.io-client release that should have been embedded.\npub(crate) const VERSION: &str = {:?};\n\
         /// The served files by name, or why they are missing.\n\
         pub(crate) const FILES: Result<&[(&str, &[u8])], &str> = Err({reason:?});\n",
        CLIENT.version
    )
}
