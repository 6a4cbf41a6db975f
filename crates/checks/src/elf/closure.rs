//! One program load as ld.so performs it (and `ldd` lists it), without
//! running anything: the interpreter, then the DT_NEEDED entries breadth
//! first, each name matched against what is already loaded before it is
//! searched, each search with the requesting object's RPATH chain,
//! library_path and RUNPATH; then every DT_VERNEED checked against the
//! DT_VERDEF of the object that satisfied it.

use std::fmt;
use std::sync::Arc;

use foldhash::HashMap;
use nodecheck_core::target::Target;

use super::search::{Expand, Linker, Loaded, Resolution, SearchPath, Via};

/// Objects one load may hold; more is an error, not a hang.
const MAX_OBJECTS: usize = 4096;

/// Something that stops the program from loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The program, then each name down to the one at fault:
    /// `["/usr/bin/mpirun", "libopen-rte.so.40", "libhwloc.so.15"]`.
    pub chain: Vec<String>,
    /// `not found`, `version GLIBC_2.99 not defined by /lib/…/libc.so.6`.
    pub detail: String,
}

impl Problem {
    /// The library at fault (the last name of the chain).
    pub fn soname(&self) -> &str {
        self.chain.last().map_or("", String::as_str)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.chain.join(" -> "), self.detail)
    }
}

/// What one load found.
#[derive(Debug, Default)]
pub struct Load {
    /// Libraries (or the interpreter) not found or not loadable.
    pub missing: Vec<Problem>,
    /// Needed versions no loaded library defines.
    pub versions: Vec<Problem>,
    /// Per object, the undefined symbols no object of the load defines
    /// (filled only when [`Setup::symbols`] asks for it).
    pub symbols: Vec<Problem>,
    /// `name => path (via)` for each object loaded besides the program
    /// (none where [`Setup::unlisted`]).
    pub loaded: Vec<String>,
    /// Every file loaded (`(st_dev, st_ino)`), the program first.
    pub objects: Vec<(u64, u64)>,
    /// Per object (same order): the objects its DT_NEEDED entries
    /// resolved to.
    pub deps: Vec<Vec<usize>>,
    /// Per object: one of its own DT_NEEDED entries failed.
    pub lacks_library: Vec<bool>,
    /// Per object: one of its own version needs failed.
    pub lacks_version: Vec<bool>,
    /// Per object: one of its own undefined symbols is defined nowhere.
    pub lacks_symbol: Vec<bool>,
}

/// Which problems a question is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    Libraries,
    Versions,
    Symbols,
}

impl Load {
    /// Whether the object at `i` loads whole here: nothing it needs,
    /// directly or through its dependencies, failed (for `versions`: no
    /// needed version is missing).
    pub fn whole_from(&self, i: usize, q: Question) -> bool {
        let lacks = match q {
            Question::Libraries => &self.lacks_library,
            Question::Versions => &self.lacks_version,
            Question::Symbols => &self.lacks_symbol,
        };
        let mut seen = vec![false; self.objects.len()];
        let mut todo = vec![i];
        while let Some(k) = todo.pop() {
            if std::mem::replace(&mut seen[k], true) {
                continue;
            }
            if lacks[k] {
                return false;
            }
            todo.extend(self.deps[k].iter().copied().filter(|&d| !seen[d]));
        }
        true
    }
}

/// How the load is set up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Setup<'a> {
    /// Extra directories, searched where LD_LIBRARY_PATH is.
    pub library_path: &'a [String],
    /// Look up every undefined symbol too (as `ldd -r`).
    pub symbols: bool,
    /// Leave [`Load::loaded`] empty: a tree scan reports only problems,
    /// and 1,500 programs of ten libraries each make 15,000 lines that
    /// nobody reads.
    pub unlisted: bool,
}

struct Node {
    loaded: Arc<Loaded>,
    /// The name it was first needed by (the program: its path).
    name: String,
    /// The object whose DT_NEEDED loaded it (`l_loader`).
    loader: Option<usize>,
}

/// The objects of one load, and the names and files they answer to.
#[derive(Default)]
struct State {
    nodes: Vec<Node>,
    names: HashMap<String, Slot>,
    ids: HashMap<(u64, u64), usize>,
    /// Per node: the nodes its needs resolved to.
    deps: Vec<Vec<usize>>,
    /// Per node: one of its needs failed.
    lacks: Vec<bool>,
}

impl State {
    /// Adds an object under the name it was needed by, its path and its
    /// soname (ld.so's `l_name` and `l_libname`).
    fn add(&mut self, node: Node) {
        let i = self.nodes.len();
        self.names.entry(node.name.clone()).or_insert(Slot::Node(i));
        self.names
            .entry(node.loaded.path.clone())
            .or_insert(Slot::Node(i));
        if let Some(so) = &node.loaded.obj.soname {
            self.names.entry(so.clone()).or_insert(Slot::Node(i));
        }
        self.ids.insert(node.loaded.id, i);
        self.nodes.push(node);
        self.deps.push(Vec::new());
        self.lacks.push(false);
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Node(usize),
    /// Not found: reported once, searched again by later needers.
    Failed,
}

/// Loads `main` (already opened; its path is the one `$ORIGIN` comes
/// from) and everything it needs. `program` is how chains name it (the
/// path as the profile wrote it, which may be a symlink).
pub fn load(
    linker: &Linker,
    t: &dyn Target,
    main: Arc<Loaded>,
    program: &str,
    setup: Setup<'_>,
) -> Result<Load, String> {
    let Some(ident) = main.obj.ident else {
        return Err(format!("{}: invalid ELF header", main.path));
    };
    let layout = linker.system(t).layout(t, ident);
    let secure = main.mode & 0o6000 != 0;
    let mut out = Load::default();
    let mut st = State::default();
    st.add(Node {
        name: program.to_string(),
        loaded: main.clone(),
        loader: None,
    });
    let mut interp_node = None;
    if let Some(interp) = &main.obj.interp {
        let problem = match linker.interpreter(t, interp, ident) {
            Resolution::Found(l, _) => {
                if !setup.unlisted {
                    out.loaded.push(format!("{interp} (interpreter)"));
                }
                interp_node = Some(st.nodes.len());
                st.add(Node {
                    name: interp.clone(),
                    loaded: l,
                    loader: Some(0),
                });
                None
            }
            Resolution::Missing { other: false } => Some("interpreter not found".to_string()),
            Resolution::Missing { other: true } => {
                Some(format!("interpreter is not a {ident} object"))
            }
            Resolution::Broken { why, .. } => Some(format!("interpreter not loadable: {why}")),
        };
        if let Some(detail) = problem {
            st.lacks[0] = true;
            out.missing.push(Problem {
                chain: vec![program.to_string(), interp.clone()],
                detail,
            });
        }
    }
    let interp = interp_node;
    let mut i = 0;
    while i < st.nodes.len() {
        let obj = st.nodes[i].loaded.obj.clone();
        if obj.needed.is_empty() {
            i += 1;
            continue;
        }
        // The requesting object's search path (ld.so's _dl_map_object).
        let mut dirs = Vec::new();
        if obj.runpath.is_none() {
            let mut at = Some(i);
            while let Some(k) = at {
                let o = &st.nodes[k].loaded.obj;
                if let (None, Some(rpath)) = (&o.runpath, &o.rpath) {
                    let e = Expand {
                        layout: &layout,
                        origin: Some(parent(&st.nodes[k].loaded.path)),
                        secure,
                    };
                    e.dirs(rpath, Via::Rpath, &mut dirs);
                }
                at = st.nodes[k].loader;
            }
        }
        // `$ORIGIN` borrowed from the object itself (held here, as the
        // state grows below), not copied per object.
        let me = Arc::clone(&st.nodes[i].loaded);
        let origin = parent(&me.path);
        if !secure {
            let e = Expand {
                layout: &layout,
                origin: Some(parent(&main.path)),
                secure,
            };
            for p in setup.library_path {
                e.dirs(p, Via::LibraryPath, &mut dirs);
            }
        }
        let e = Expand {
            layout: &layout,
            origin: Some(origin),
            secure,
        };
        if let Some(runpath) = &obj.runpath {
            e.dirs(runpath, Via::Runpath, &mut dirs);
        }
        let sp = SearchPath {
            ident,
            dirs,
            defaults: !obj.nodeflib,
        };
        for name in &obj.needed {
            // A name that failed before is searched again with this
            // object's search path: ld.so's trace mode (ldd) never matches
            // a name against its stand-in for a missing library, and a
            // later object may well find it (its RUNPATH, or no
            // DF_1_NODEFLIB). A second miss is not reported again.
            let retry = match st.names.get(name) {
                Some(Slot::Node(k)) => {
                    let k = *k;
                    st.deps[i].push(k);
                    continue;
                }
                Some(Slot::Failed) => true,
                None => false,
            };
            let r = if name.contains('/') {
                match e.one(name) {
                    Some(p) => linker.direct(t, &p, ident),
                    None => Resolution::Missing { other: false },
                }
            } else {
                linker.resolve(t, name, &sp)
            };
            let detail = match r {
                Resolution::Found(l, via) => {
                    if let Some(&k) = st.ids.get(&l.id) {
                        st.names.insert(name.clone(), Slot::Node(k));
                        st.deps[i].push(k);
                        continue;
                    }
                    if st.nodes.len() >= MAX_OBJECTS {
                        return Err(format!(
                            "{}: more than {MAX_OBJECTS} libraries to load",
                            main.path
                        ));
                    }
                    if !setup.unlisted {
                        out.loaded
                            .push(format!("{name} => {} ({})", l.path, via.as_str()));
                    }
                    let k = st.nodes.len();
                    st.add(Node {
                        name: name.clone(),
                        loaded: l,
                        loader: Some(i),
                    });
                    st.names.insert(name.clone(), Slot::Node(k));
                    st.deps[i].push(k);
                    continue;
                }
                Resolution::Missing { other: false } => match linker.unconfigured(t, name, &sp) {
                    Some(why) => format!("not found; {why}"),
                    None => "not found".to_string(),
                },
                Resolution::Missing { other: true } => {
                    format!("not found; only a library for another class or machine than {ident}")
                }
                Resolution::Broken { path, why } => format!("not loadable: {path}: {why}"),
            };
            st.lacks[i] = true;
            if retry {
                continue;
            }
            st.names.insert(name.clone(), Slot::Failed);
            let mut chain = chain(&st.nodes, i);
            chain.push(name.clone());
            out.missing.push(Problem { chain, detail });
        }
        i += 1;
    }
    out.lacks_version = vec![false; st.nodes.len()];
    check_versions(&st.nodes, &st.names, &mut out);
    out.lacks_symbol = vec![false; st.nodes.len()];
    if setup.symbols {
        check_symbols(linker, t, &st, interp, &mut out);
    }
    out.objects = st.nodes.iter().map(|n| n.loaded.id).collect();
    out.deps = st.deps;
    out.lacks_library = st.lacks;
    Ok(out)
}

/// ld.so's `_dl_check_map_versions`: a needed version must be defined by
/// the library that satisfied the name (the same `vna_hash`/`vd_hash` and
/// the same name, as its `match_symbol` compares them); a library with no version
/// definitions at all, a weak need, or a need on a library that was not
/// found (already reported) pass.
fn check_versions(nodes: &[Node], names: &HashMap<String, Slot>, out: &mut Load) {
    for (i, n) in nodes.iter().enumerate() {
        for need in &n.loaded.obj.verneed {
            let Some(Slot::Node(k)) = names.get(&need.file) else {
                continue;
            };
            let by = &nodes[*k].loaded;
            let Some(defs) = &by.obj.verdef else {
                continue;
            };
            // ld.so's match_symbol: the hashes first, then the names.
            let defined = |v: &super::object::Version| {
                defs.iter().any(|d| d.hash == v.hash && d.name == v.name)
            };
            let lacking: Vec<&str> = need
                .versions
                .iter()
                .filter(|v| !v.weak && !defined(v))
                .map(|v| v.name.as_str())
                .collect();
            if lacking.is_empty() {
                continue;
            }
            out.lacks_version[i] = true;
            let mut chain = chain(nodes, i);
            chain.push(need.file.clone());
            let s = if lacking.len() == 1 { "" } else { "s" };
            out.versions.push(Problem {
                chain,
                detail: format!(
                    "version{s} {} not defined by {}",
                    lacking.join(", "),
                    by.path
                ),
            });
        }
    }
}

/// Names of undefined symbols shown in one problem at most.
const SHOWN_SYMBOLS: usize = 20;

/// `ldd -r`: every undefined symbol of every object (but the interpreter,
/// which relocated itself) must be defined by an object of the global
/// scope: the program and its libraries in load order; the interpreter
/// only when a DT_NEEDED entry named it (the kernel's PT_INTERP alone does
/// not put it in the scope). Which object defines a symbol only matters
/// for interposition, not for whether it is defined, so the scope is
/// searched in load order until a definition matches.
fn check_symbols(
    linker: &Linker,
    t: &dyn Target,
    st: &State,
    interp: Option<usize>,
    out: &mut Load,
) {
    let n = st.nodes.len();
    let mut tables = Vec::with_capacity(n);
    for (k, node) in st.nodes.iter().enumerate() {
        match linker.symbols(t, &node.loaded) {
            Ok(s) => tables.push(Some(s)),
            Err(e) => {
                tables.push(None);
                if Some(k) != interp {
                    out.lacks_symbol[k] = true;
                    out.symbols.push(Problem {
                        chain: chain(&st.nodes, k),
                        detail: format!("cannot read its symbols: {e}"),
                    });
                }
            }
        }
    }
    let in_scope = |k: usize| Some(k) != interp || st.deps.iter().any(|d| d.contains(&k));
    let scope: Vec<&super::symbols::Symbols> = (0..n)
        .filter(|&k| in_scope(k))
        .filter_map(|k| tables[k].as_deref())
        .collect();
    for (k, table) in tables.iter().enumerate() {
        if Some(k) == interp {
            continue;
        }
        let Some(table) = table else { continue };
        // Most symbols come from the object's own dependencies, the same
        // in every load that holds it: look there once per run, and in
        // the rest of this load's scope only for what is left.
        let own = reach(&st.deps, k);
        let mut ids: Vec<(u64, u64)> = own.iter().map(|&j| st.nodes[j].loaded.id).collect();
        ids.sort_unstable();
        let left = linker.unresolved((st.nodes[k].loaded.id, ids), || {
            let own: Vec<&super::symbols::Symbols> =
                own.iter().filter_map(|&j| tables[j].as_deref()).collect();
            (0u32..)
                .zip(&table.needs)
                .filter(|(_, need)| {
                    !own.iter()
                        .any(|s| s.defines(&need.name, need.version.as_ref()))
                })
                .map(|(i, _)| i)
                .collect()
        });
        let undefined: Vec<String> = left
            .iter()
            .filter_map(|&i| table.needs.get(i as usize))
            .filter(|need| {
                !scope
                    .iter()
                    .any(|s| s.defines(&need.name, need.version.as_ref()))
            })
            .map(|need| need.shown())
            .collect();
        if undefined.is_empty() {
            continue;
        }
        out.lacks_symbol[k] = true;
        let shown: Vec<&str> = undefined
            .iter()
            .take(SHOWN_SYMBOLS)
            .map(String::as_str)
            .collect();
        let more = match undefined.len() {
            m if m > SHOWN_SYMBOLS => format!(" and {} more", m - SHOWN_SYMBOLS),
            _ => String::new(),
        };
        let s = if undefined.len() == 1 { "" } else { "s" };
        out.symbols.push(Problem {
            chain: chain(&st.nodes, k),
            detail: format!("undefined symbol{s} {}{more}", shown.join(", ")),
        });
    }
}

/// Node `k` and every node its DT_NEEDED entries reach.
fn reach(deps: &[Vec<usize>], k: usize) -> Vec<usize> {
    let mut seen = vec![false; deps.len()];
    let mut out = Vec::new();
    let mut todo = vec![k];
    while let Some(j) = todo.pop() {
        if std::mem::replace(&mut seen[j], true) {
            continue;
        }
        out.push(j);
        todo.extend(deps[j].iter().copied().filter(|&d| !seen[d]));
    }
    out
}

/// The names from the program down to node `i`.
fn chain(nodes: &[Node], i: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = Some(i);
    while let Some(k) = at {
        names.push(nodes[k].name.clone());
        at = nodes[k].loader;
    }
    names.reverse();
    names
}

/// The directory part of an absolute path (`/` for `/x`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}
