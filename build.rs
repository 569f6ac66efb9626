//! The namespace specs in `namespaces/` are compiled into the binary (`include_dir!`), which
//! rustc does not track: rebuild whenever that folder changes.
fn main() {
    println!("cargo:rerun-if-changed=namespaces");
}
