//! The official Socket.IO Admin UI, brought in at build time so the gateway can serve it at
//! `/admin/` (see `src/admin/ui.rs`).
//!
//! The UI is the built Vue app in `@socket.io/admin-ui`'s `ui/dist`. Its `index.html` loads two
//! stylesheets from the internet: Roboto from Google Fonts and the Material Design Icons from
//! jsDelivr (`@mdi/font@latest`). An admin page must not make its users' browsers call third
//! parties, so the icons come from `@mdi/font` on npm (pinned like the UI, only the stylesheet and
//! the woff2 font) and Roboto is dropped (Vuetify falls back to the system's sans-serif). The
//! rewrite checks the page is the one it expects, so a new UI version cannot slip a remote
//! resource through.
//!
//! Output in `OUT_DIR`: the files under `admin-ui/`, and `admin_ui_assets.rs`, a table of
//! `(path, content type, bytes)` that the gateway includes, and why it is empty when the packages
//! could not be fetched (the build still succeeds; `/admin/` then answers 404 saying why, and the
//! `/admin` namespace still serves the hosted UI).

use std::{env, fmt::Write as _, fs, path::PathBuf};

use crate::npm::{self, Package};

const ADMIN_UI: Package = Package {
    name: "@socket.io/admin-ui",
    version: "0.5.1",
    integrity: "sha512-1dlGL2FGm6T+uL1e6iDvbo2eCINwvW7iVbjIblwh5kPPRM1SP8lmZrbFZf4QNJ/cqQ+JLcx49eXGM9WAB4TK7w==",
};

/// The icon font the UI's page asks jsDelivr for (`@latest` there; pinned here).
const MDI_FONT: Package = Package {
    name: "@mdi/font",
    version: "7.4.47",
    integrity: "sha512-43MtGpd585SNzHZPcYowu/84Vz2a2g31TvPMTm9uTiCSWzaheQySUcSyUH/46fPnuPQWof2yd0pGBtzee/IQWw==",
};

const GOOGLE_FONTS: &str =
    r#"<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto:100,300,400,500,700,900">"#;
const MDI_CDN: &str =
    r#"<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css">"#;
const MDI_LOCAL: &str = r#"<link rel="stylesheet" href="mdi/css/materialdesignicons.min.css">"#;

/// Builds `OUT_DIR/admin-ui/` and `OUT_DIR/admin_ui_assets.rs`.
pub fn build() {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = out_dir.join("admin-ui");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).expect("the output folder");

    // Source maps would triple the size for no one: the page never asks for them unless a
    // developer opens the browser's tools.
    let (ui, font) = match ADMIN_UI.fetch().and_then(|ui| MDI_FONT.fetch().map(|font| (ui, font))) {
        Ok(tarballs) => tarballs,
        Err(reason) => {
            npm::unavailable(
                &format!("the Admin UI ({}@{})", ADMIN_UI.name, ADMIN_UI.version),
                &[&ADMIN_UI, &MDI_FONT],
                &reason,
            );
            write_table(&out_dir, "&[]", Some(&reason));
            return;
        }
    };
    let mut files = npm::unpack(&ui, &root, |path| match path {
        "LICENSE" => Some("LICENSE".into()),
        p if p.ends_with(".map") => None,
        p => p.strip_prefix("ui/dist/").map(str::to_string),
    });
    files.extend(npm::unpack(&font, &root, |path| match path {
        "LICENSE" | "css/materialdesignicons.min.css" | "fonts/materialdesignicons-webfont.woff2" => {
            Some(format!("mdi/{path}"))
        }
        _ => None,
    }));

    let index = root.join("index.html");
    let page = fs::read_to_string(&index).expect("ui/dist/index.html");
    assert!(
        page.contains(GOOGLE_FONTS) && page.contains(MDI_CDN),
        "{}@{}: index.html is not the page this build step rewrites; check it for remote resources and update build/admin_ui.rs",
        ADMIN_UI.name,
        ADMIN_UI.version
    );
    let page = page.replace(GOOGLE_FONTS, "").replace(MDI_CDN, MDI_LOCAL);
    assert!(
        !["http:", "https:", "\"//"].iter().any(|remote| page.contains(remote)),
        "index.html still names a remote resource: {page}"
    );
    fs::write(&index, page).expect("index.html");
    for css in files.iter().filter(|f| f.ends_with(".css")) {
        let text = fs::read_to_string(root.join(css)).expect("a stylesheet");
        assert!(!text.contains("url(http") && !text.contains("url(//"), "{css} loads a remote resource");
    }

    let mut table = String::from("&[\n");
    for file in &files {
        let kind = content_type(file).unwrap_or_else(|| panic!("no content type for {file}"));
        writeln!(table, "    ({file:?}, {kind:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/admin-ui/{file}\"))),")
            .expect("writing to a string");
    }
    table.push(']');
    write_table(&out_dir, &table, None);
}

/// Writes `admin_ui_assets.rs`: the version, the files, and why there are none (`missing`).
fn write_table(out_dir: &std::path::Path, table: &str, missing: Option<&str>) {
    let source = format!(
        "/// `@socket.io/admin-ui`'s version.\npub(crate) const VERSION: &str = {:?};\n\
         /// The UI's files: path under `/admin/`, content type, bytes.\n\
         pub(crate) static ASSETS: &[(&str, &str, &[u8])] = {table};\n\
         /// Why the build has no UI, when it has none.\n\
         pub(crate) const MISSING: Option<&str> = {missing:?};\n",
        ADMIN_UI.version
    );
    fs::write(out_dir.join("admin_ui_assets.rs"), source).expect("admin_ui_assets.rs");
}

fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "woff2" => "font/woff2",
        _ if path.ends_with("LICENSE") => "text/plain; charset=utf-8",
        _ => return None,
    })
}
