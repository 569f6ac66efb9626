//! The layout ARCHITECTURE.md draws, checked: no two modules import each other, directly or
//! through others, and the engine core imports no front, no transport and no outer part.
//!
//! The graph is read from the source, from every `crate::` and `super::` path outside test
//! modules (`use` lines and paths written inline alike). An edge between two files is lifted to
//! the siblings under their closest common module: `front::socketio::namespace` naming
//! `engine::runtime` is an edge `front -> engine`, and `engine::dispatch` naming `engine::actions`
//! one between those two. A module may always name its own ancestors and descendants (a parent
//! declares and re-exports its children; a child uses what its parent shares).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Module path (segments, `[]` for the crate root) to what its file says outside test modules.
type Sources = BTreeMap<Vec<String>, String>;
/// Lifted edges: module to the modules it names, each with one example of the path that does.
type Graph = BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>>;

/// What the engine core may never name: the fronts, what assembles it, and the outer parts.
const NOT_FROM_THE_ENGINE: &[&str] = &["front", "node", "net", "http", "cluster", "admin", "page", "app", "cli"];

#[test]
fn no_module_imports_itself_through_others() {
    let graph = graph(&read_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")));
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "import cycles (module -> module it names, via an example path):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_engine_core_names_no_front_transport_or_outer_part() {
    let graph = graph(&read_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")));
    let engine = vec!["engine".to_string()];
    let forbidden: Vec<String> = graph
        .get(&engine)
        .into_iter()
        .flatten()
        .filter(|(to, _)| NOT_FROM_THE_ENGINE.contains(&to[0].as_str()))
        .map(|(to, via)| format!("engine -> {} (via {via})", to.join("::")))
        .collect();
    assert!(forbidden.is_empty(), "the engine core names parts it must not:\n{}", forbidden.join("\n"));
    assert!(graph.contains_key(&engine), "no edges read from the engine: the reader is broken");
}

/// The checks above, on a made-up crate: a cycle through three files is found, with the path
/// that closes it; a parent naming its child is not a cycle; test modules are not read.
#[test]
fn the_checks_find_a_cycle_and_nothing_else() {
    let sources = |files: &[(&str, &str)]| -> Sources {
        files.iter().map(|(m, s)| (segments(m), strip_test_modules(s))).collect()
    };
    let looping = sources(&[
        ("", "pub mod a; pub mod b;"),
        ("a", "mod x; mod y; use crate::b::Thing;"),
        ("a::x", "use super::y::Helper;"),
        ("a::y", "fn f() { crate::a::x::go() }"),
        ("b", "pub struct Thing; fn g() { let _ = crate::a::x::go; }"),
    ]);
    let found = cycles(&graph(&looping));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().any(|c| c.contains("a -> b") && c.contains("b -> a")), "{found:?}");
    assert!(found.iter().any(|c| c.contains("a::x -> a::y") && c.contains("a::y -> a::x")), "{found:?}");

    let clean = sources(&[
        ("", "pub mod a; pub mod b;"),
        ("a", "mod x; pub use x::Thing; use crate::b::Other;"),
        ("a::x", "use super::super::b::Other; use crate::a::Shared;"),
        ("b", "pub struct Other;\n#[cfg(test)]\nmod tests {\n    use crate::a::Thing;\n}\n"),
    ]);
    assert_eq!(cycles(&graph(&clean)), Vec::<String>::new());
}

fn segments(module: &str) -> Vec<String> {
    module.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Every `.rs` file under `root` by module path (`a/mod.rs` and `a.rs` are both `a`).
fn read_sources(root: &Path) -> Sources {
    fn walk(dir: &Path, root: &Path, out: &mut Sources) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).expect("under src").with_extension("");
                let mut module: Vec<String> =
                    relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).expect("a source file is UTF-8");
                out.insert(module, text);
            }
        }
    }
    let mut raw = Sources::new();
    walk(root, root, &mut raw);
    // Modules declared `#[cfg(test)] mod name;` are tests, in files of their own.
    let tests: BTreeSet<Vec<String>> = raw
        .iter()
        .flat_map(|(module, text)| {
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            lines
                .windows(2)
                .filter(|w| w[0] == "#[cfg(test)]" && w[1].ends_with(';'))
                .filter_map(|w| module_declared(w[1]))
                .map(|name| [module.clone(), vec![name.to_string()]].concat())
                .collect::<Vec<_>>()
        })
        .collect();
    raw.into_iter()
        .filter(|(module, _)| !tests.iter().any(|t| module.starts_with(t)))
        .map(|(module, text)| (module, strip_test_modules(&text)))
        .collect()
}

/// The name `line` declares a module of (`mod x;`, `pub(crate) mod x {`), if it does.
fn module_declared(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches("pub(crate) ").trim_start_matches("pub ").strip_prefix("mod ")?;
    Some(rest.trim_end_matches([';', '{', ' ']))
}

/// The text without comments and without `#[cfg(test)]` modules, which may name anything.
fn strip_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let code = line.split("//").next().unwrap_or("");
        if code.trim() == "#[cfg(test)]" && lines.peek().is_some_and(|next| module_declared(next.trim()).is_some()) {
            let mut depth = 0i32;
            for inner in lines.by_ref() {
                depth += inner.matches('{').count() as i32 - inner.matches('}').count() as i32;
                if depth <= 0 && inner.contains('}') || inner.trim_end().ends_with(';') && depth == 0 {
                    break;
                }
            }
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The paths a file names: `crate::a::b` and `super::c` written inline, and every leaf of a
/// `use crate::{a::{b, c}, d}` group.
fn paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let starts_path = (rest.starts_with("crate::") || rest.starts_with("super::"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':'));
        if !starts_path {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let len = path_len(rest);
        expand(&rest[..len], &mut found);
        i += len.max(1);
    }
    found
}

/// Length of the path (with any `{...}` group) at the start of `text`.
fn path_len(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') => return i,
            _ => {}
        }
    }
    text.len()
}

/// `a::{b, c::{d}}` to `a::b`, `a::c::d`.
fn expand(path: &str, out: &mut Vec<String>) {
    let Some(open) = path.find('{') else {
        out.push(path.trim().trim_end_matches("::").to_string());
        return;
    };
    let prefix = &path[..open];
    let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let item = inner[start..i].trim();
                let item = item.split(" as ").next().unwrap_or(item).trim();
                if !item.is_empty() && item != "self" && item != "*" {
                    expand(&format!("{prefix}{item}"), out);
                } else {
                    out.push(prefix.trim_end_matches("::").to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
    }
}

/// The module a path names from `module`: the longest prefix of it that is a file module.
fn target(path: &str, module: &[String], sources: &Sources) -> Option<Vec<String>> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<String> = Vec::new();
    if segs[0] == "crate" {
        segs.remove(0);
    } else {
        base = module.to_vec();
        while segs.first() == Some(&"super") {
            base.pop();
            segs.remove(0);
        }
    }
    base.extend(segs.iter().map(|s| s.to_string()));
    (0..=base.len()).rev().map(|n| base[..n].to_vec()).find(|m| sources.contains_key(m))
}

fn graph(sources: &Sources) -> Graph {
    let mut graph = Graph::new();
    for (module, text) in sources {
        for path in paths(text) {
            let Some(to) = target(&path, module, sources) else { continue };
            let common = module.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == module.len() || common == to.len() {
                continue; // an ancestor or a descendant
            }
            let (from, to) = (module[..=common].to_vec(), to[..=common].to_vec());
            let via = format!("{} names {path}", if module.is_empty() { "lib".into() } else { module.join("::") });
            graph.entry(from).or_default().entry(to).or_insert(via);
        }
    }
    graph
}

/// Every strongly connected set of more than one module, as its edges (Tarjan's algorithm).
fn cycles(graph: &Graph) -> Vec<String> {
    struct Walk<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        on_stack: BTreeSet<&'g Vec<String>>,
        found: Vec<BTreeSet<&'g Vec<String>>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|e| e.keys()) {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    set.insert(w);
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    self.found.push(set);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
        .iter()
        .map(|set| {
            let mut lines = Vec::new();
            for from in set {
                for (to, via) in graph.get(*from).into_iter().flatten().filter(|(to, _)| set.contains(to)) {
                    lines.push(format!("  {} -> {} ({via})", from.join("::"), to.join("::")));
                }
            }
            lines.join("\n")
        })
        .collect()
}
