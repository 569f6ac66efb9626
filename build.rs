//! Build steps:
//! - the namespace specs in `namespaces/` are compiled into the binary (`include_dir!`), which
//!   rustc does not track: rebuild whenever that folder changes;
//! - what the gateway serves to browsers comes from npm at pinned versions and integrities
//!   (`build/npm.rs`) and is embedded: socket.io-client's browser bundle
//!   (`build/socketio_client.rs`) and the official Socket.IO Admin UI (`build/admin_ui.rs`).
//!   Without network (and without `NPM_TARBALL_DIR`) the build still succeeds, with a warning:
//!   the gateway then answers 404, saying why, where they would be.

#[path = "build/admin_ui.rs"]
mod admin_ui;
#[path = "build/npm.rs"]
mod npm;
#[path = "build/socketio_client.rs"]
mod socketio_client;

fn main() {
    println!("cargo:rerun-if-changed=namespaces");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
    socketio_client::build();
    admin_ui::build();
}
