//! The library's modules form layers: no module reaches, through its
//! imports and paths, a module that reaches it back. Files are modules
//! (`x/mod.rs` is `x`); a path through a re-export counts as a path to the
//! file that defines the item; a `mod` declaration is not an import; unit
//! tests are left out. Library files also import modules, not the facade:
//! no `crate::Error` where `crate::error::Error` is meant.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module's path below the crate (`["pipeline", "run"]`).
type ModPath = Vec<String>;

struct Module {
    file: PathBuf,
    /// What its `use` items bring in: name → absolute path.
    uses: BTreeMap<String, Vec<String>>,
    /// Every absolute `crate` path its code names (tests excluded).
    paths: Vec<Vec<String>>,
}

fn module_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// `path` written in module `here`, made absolute (`None` for external
/// crates and the standard library); `known` are the crate's module files.
fn absolute(known: &BTreeSet<ModPath>, here: &ModPath, path: &[String]) -> Option<Vec<String>> {
    let mut out = here.clone();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        // A child module, named relative to this one.
        Some(first) if known.contains(&[here.as_slice(), &[first.to_owned()]].concat()) => {}
        Some("crate") => {
            out.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                out.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    out.extend(rest.iter().cloned());
    Some(out)
}

fn use_tree(prefix: &mut Vec<String>, tree: &syn::UseTree, out: &mut Vec<(String, Vec<String>)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_tree(prefix, &p.tree, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut full = prefix.clone();
            full.push(n.ident.to_string());
            let name = if n.ident == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                n.ident.to_string()
            };
            out.push((name, full));
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix.clone();
            full.push(r.ident.to_string());
            out.push((r.rename.to_string(), full));
        }
        syn::UseTree::Glob(_) => out.push(("*".to_owned(), prefix.clone())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_tree(prefix, t, out);
            }
        }
    }
}

/// Collects a file's `use` items and the paths its code names.
struct Collector<'a> {
    known: &'a BTreeSet<ModPath>,
    /// The module being read: the file's, and any inline module in it.
    here: ModPath,
    uses: Vec<(String, Vec<String>)>,
    paths: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let is_test = m.attrs.iter().any(|a| {
            a.path().is_ident("cfg")
                && a.meta
                    .require_list()
                    .is_ok_and(|l| l.tokens.to_string() == "test")
        });
        if !is_test {
            self.here.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.here.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut found = Vec::new();
        use_tree(&mut Vec::new(), &u.tree, &mut found);
        for (name, path) in found {
            if let Some(abs) = absolute(self.known, &self.here, &path) {
                self.paths.push(abs.clone());
                self.uses.push((name, abs));
            }
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        // A lone `crate`, `super` or `self` is a visibility or a receiver.
        if segments.len() > 1
            && let Some(abs) = absolute(self.known, &self.here, &segments)
        {
            self.paths.push(abs);
        }
        syn::visit::visit_path(self, p);
    }
}

fn modules(src: &Path) -> BTreeMap<ModPath, Module> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_stem().is_some_and(|s| s != "tests")
            {
                files.push(path);
            }
        }
    }
    let known: BTreeSet<ModPath> = files.iter().map(|f| module_path(src, f)).collect();
    files
        .into_iter()
        .map(|file| {
            let here = module_path(src, &file);
            let text = std::fs::read_to_string(&file).expect("readable");
            let ast = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
            let mut c = Collector {
                known: &known,
                here: here.clone(),
                uses: Vec::new(),
                paths: Vec::new(),
            };
            c.visit_file(&ast);
            let module = Module {
                file,
                uses: c.uses.into_iter().collect(),
                paths: c.paths,
            };
            (here, module)
        })
        .collect()
}

/// The module that defines what `path` names, following re-exports.
fn resolve(mods: &BTreeMap<ModPath, Module>, path: &[String], depth: usize) -> Option<ModPath> {
    // The longest prefix that is a module file.
    let k = (0..=path.len())
        .rev()
        .find(|&k| mods.contains_key(&path[..k]))?;
    let module = path[..k].to_vec();
    if depth < 16
        && let Some(name) = path.get(k)
        && let Some(target) = mods[&module].uses.get(name)
        && target.as_slice() != path
    {
        let mut next = target.clone();
        next.extend(path[k + 1..].iter().cloned());
        return resolve(mods, &next, depth + 1).or(Some(module));
    }
    Some(module)
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "lib".to_owned()
    } else {
        m.join("/")
    }
}

#[test]
fn the_library_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("flowyml/src");
    let mods = modules(&src);
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (here, module) in &mods {
        for path in &module.paths {
            if let Some(target) = resolve(&mods, path, 0)
                && &target != here
            {
                if std::env::var_os("FLOWYML_LAYERS_DEBUG").is_some() {
                    eprintln!("{} -> {} ({})", name(here), name(&target), path.join("::"));
                }
                edges.entry(here.clone()).or_default().insert(target);
            }
        }
    }
    // Modules that reach each other (Kosaraju's strongly connected
    // components), every group of more than one reported.
    let keys: Vec<&ModPath> = mods.keys().collect();
    let reach = |from: &ModPath, forward: bool| -> BTreeSet<ModPath> {
        let mut seen = BTreeSet::from([from.clone()]);
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            let next: Vec<ModPath> = if forward {
                edges.get(&m).into_iter().flatten().cloned().collect()
            } else {
                edges
                    .iter()
                    .filter(|(_, to)| to.contains(&m))
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            for n in next {
                if seen.insert(n.clone()) {
                    stack.push(n);
                }
            }
        }
        seen
    };
    let mut done = BTreeSet::new();
    let mut circles = Vec::new();
    for m in keys {
        if done.contains(m) {
            continue;
        }
        let group: BTreeSet<ModPath> = reach(m, true)
            .intersection(&reach(m, false))
            .cloned()
            .collect();
        if group.len() > 1 {
            circles.push(group.iter().map(name).collect::<Vec<_>>().join(", "));
        }
        done.extend(group);
    }
    assert!(
        circles.is_empty(),
        "modules that import each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn library_files_import_modules_not_the_facade() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("flowyml/src");
    let mods = modules(&src);
    let root = &mods[&Vec::new()];
    let mut offenders = Vec::new();
    for (here, module) in &mods {
        if here.is_empty() {
            continue;
        }
        for path in &module.paths {
            if !path.is_empty()
                && !mods.contains_key(&path[..1])
                && root.uses.contains_key(&path[0])
            {
                offenders.push(format!(
                    "{}: crate::{}",
                    module.file.display(),
                    path.join("::")
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "imports through the crate root:\n{}",
        offenders.join("\n")
    );
}
