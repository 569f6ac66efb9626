//! Build steps:
//! - the namespace specs in `namespaces/` are compiled into the binary (`include_dir!`), which
//!   rustc does not track: rebuild whenever that folder changes;
//! - the official Socket.IO Admin UI is taken from npm at a pinned version and integrity, and
//!   embedded (`build/admin_ui.rs`, over `build/npm.rs`).

#[path = "build/admin_ui.rs"]
mod admin_ui;
#[path = "build/npm.rs"]
mod npm;

fn main() {
    println!("cargo:rerun-if-changed=namespaces");
    println!("cargo:rerun-if-changed=build");
    admin_ui::build();
}
