//! Whether a module can be loaded: every module modprobe would insert for
//! it (the module and the dependency list modules.dep gives it) has its
//! file, is a readable kernel module, and was built for this kernel (the
//! first word of its vermagic is the release). Each module's own
//! `depends=` must also be covered by modules.dep: a dependency modules.dep
//! does not list means depmod ran before the module changed.
//!
//! When something is broken the answer names the first broken link of the
//! chain, nearest to the module first, following the modules' own
//! `depends=`: `mlx5_ib → ib_uverbs → ib_core: … is missing`.

use std::collections::{HashMap, VecDeque};

use nodecheck_core::target::Target;

use super::dep::Dep;
use super::index::Index;

/// One problem in a closure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// modules.dep lists the file but it is not there.
    Missing(usize),
    /// The file is there but is no readable module (the message names it).
    Unreadable(usize, String),
    /// Built for another kernel.
    Vermagic { id: usize, vermagic: String },
    /// No vermagic at all: the kernel refuses it.
    NoVermagic(usize),
    /// A module's `depends=` names a module that is neither a module file
    /// of modules.dep nor built in.
    UnknownDep { from: usize, dep: String },
    /// A module's `depends=` names a module modules.dep does not list for
    /// the module being loaded: modules.dep is stale.
    StaleDep { from: usize, dep: String },
    /// modules.dep names a dependency that has no line of its own.
    Unlisted { from: usize, path: String },
}

impl Problem {
    /// The module the problem is in (the one the chain leads to).
    fn at(&self) -> usize {
        match self {
            Problem::Missing(id)
            | Problem::Unreadable(id, _)
            | Problem::Vermagic { id, .. }
            | Problem::NoVermagic(id)
            | Problem::UnknownDep { from: id, .. }
            | Problem::StaleDep { from: id, .. }
            | Problem::Unlisted { from: id, .. } => *id,
        }
    }

    /// Whether this only means nodecheck could not tell (an error), not
    /// that the module is broken (a failure).
    pub fn is_error(&self) -> bool {
        matches!(self, Problem::Unreadable(..))
    }

    fn describe(&self, index: &Index) -> String {
        let file = |id: usize| index.file(id);
        let name = |id: usize| index.name(id).to_string();
        match self {
            Problem::Missing(id) => {
                format!("its file {} is missing (modules.dep lists it)", file(*id))
            }
            Problem::Unreadable(_, why) => why.clone(),
            Problem::Vermagic { id, vermagic } => format!(
                "{} was built for kernel {} (vermagic {vermagic:?}), not {}",
                file(*id),
                vermagic.split_whitespace().next().unwrap_or(""),
                index.release
            ),
            Problem::NoVermagic(id) => format!(
                "{} has no vermagic: the kernel refuses to load it",
                file(*id)
            ),
            Problem::UnknownDep { from, dep } => format!(
                "{} needs {dep}, which is not in the image (neither in modules.dep nor built in)",
                name(*from)
            ),
            Problem::Unlisted { from, path } => format!(
                "modules.dep lists {path} as a dependency of {} but has no line for it: modules.dep is truncated or stale, run `depmod {}`",
                name(*from),
                index.release
            ),
            Problem::StaleDep { from, dep } => format!(
                "{} needs {dep}, but modules.dep does not list it: modules.dep is stale, run `depmod {}`",
                name(*from),
                index.release
            ),
        }
    }
}

/// The verdict on one module.
#[derive(Clone, Debug)]
pub struct Closure {
    /// How many modules modprobe would load (the module included).
    pub members: usize,
    /// Problems, the first broken link first, each with its chain of
    /// module names from the module checked.
    pub problems: Vec<(Problem, Vec<String>)>,
}

impl Closure {
    /// A one-line explanation: the first broken link, its chain, and how
    /// many more problems there are.
    pub fn explain(&self, index: &Index) -> String {
        let Some((first, chain)) = self.problems.first() else {
            return String::new();
        };
        let mut s = if chain.len() > 1 {
            format!("{}: {}", chain.join(" → "), first.describe(index))
        } else {
            first.describe(index)
        };
        if self.problems.len() > 1 {
            let n = self.problems.len() - 1;
            s.push_str(&format!(
                " (and {n} more problem{})",
                if n == 1 { "" } else { "s" }
            ));
        }
        s
    }

    /// Every problem, one per line, for the check's long output.
    pub fn details(&self, index: &Index) -> String {
        self.problems
            .iter()
            .map(|(p, chain)| format!("{}: {}\n", chain.join(" → "), p.describe(index)))
            .collect()
    }
}

/// Whether module `id` is a RHEL-style weak update: a module built for an
/// earlier kernel of the same ABI, linked into `weak-updates/` by
/// weak-modules. Built with modversions, the kernel compares only the rest
/// of its vermagic and its symbol CRCs (not checked here), so its release
/// may differ.
fn weak_update(index: &Index, id: usize, info: &super::modfile::ModInfo) -> bool {
    index
        .file(id)
        .starts_with(&format!("{}/weak-updates/", index.dir))
        && info
            .vermagic
            .as_deref()
            .is_some_and(|v| v.split_whitespace().skip(1).any(|w| w == "modversions"))
}

/// Checks module `root` (an id of `index`) and everything modules.dep
/// says it needs. `Err` only when a module file cannot be looked at
/// (permission on the module directory): why, naming it.
pub fn check(target: &dyn Target, index: &Index, root: usize) -> Result<Closure, String> {
    let mut members = vec![root];
    // Problems per member, and the `depends=` edges of each readable one.
    let mut problems: Vec<Problem> = Vec::new();
    for dep in index.deps(root) {
        match dep {
            Dep::Listed(d) if d != root && !members.contains(&d) => members.push(d),
            Dep::Listed(_) => {}
            Dep::Unlisted(path) => problems.push(Problem::Unlisted { from: root, path }),
        }
    }
    let in_closure: HashMap<&str, usize> = members.iter().map(|&id| (index.name(id), id)).collect();
    let mut edges: HashMap<usize, Vec<usize>> = HashMap::new();
    for &id in &members {
        let info = match index.info(target, id)? {
            None => {
                problems.push(Problem::Missing(id));
                continue;
            }
            Some(info) => info,
        };
        let info = match info.as_ref() {
            Ok(i) => i,
            Err(why) => {
                problems.push(Problem::Unreadable(id, why.clone()));
                continue;
            }
        };
        match info.built_for() {
            None => problems.push(Problem::NoVermagic(id)),
            Some(r) if r != index.release && !weak_update(index, id, info) => {
                problems.push(Problem::Vermagic {
                    id,
                    vermagic: info.vermagic.clone().unwrap_or_default(),
                });
            }
            Some(_) => {}
        }
        for dep in &info.depends {
            if let Some(&d) = in_closure.get(dep.as_str()) {
                edges.entry(id).or_default().push(d);
            } else if index.is_builtin(dep) {
                // Built in: nothing to load.
            } else if index.by_name(dep).is_some() {
                problems.push(Problem::StaleDep {
                    from: id,
                    dep: dep.clone(),
                });
            } else {
                problems.push(Problem::UnknownDep {
                    from: id,
                    dep: dep.clone(),
                });
            }
        }
    }
    // Breadth-first from the root along `depends=`: distance and parent of
    // each member reached, to order problems nearest first and to show
    // the chain that leads to each.
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut order: HashMap<usize, usize> = HashMap::from([(root, 0)]);
    let mut queue = VecDeque::from([root]);
    while let Some(at) = queue.pop_front() {
        for &next in edges.get(&at).into_iter().flatten() {
            if !order.contains_key(&next) {
                order.insert(next, order.len());
                parent.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    let chain = |id: usize| {
        let mut c = vec![index.name(id).to_string()];
        let mut at = id;
        while let Some(&p) = parent.get(&at) {
            c.push(index.name(p).to_string());
            at = p;
        }
        if at != root {
            // Not reached through `depends=` (a member in between is
            // missing or unreadable): modules.dep alone says it is needed.
            c.push(index.name(root).to_string());
        }
        c.reverse();
        c
    };
    let position = |p: &Problem| {
        let at = p.at();
        let member = members.iter().position(|&m| m == at).unwrap_or(usize::MAX);
        (
            order.get(&at).copied().unwrap_or(usize::MAX),
            member,
            p.is_error(),
        )
    };
    problems.sort_by_key(|p| position(p));
    // Failures first: a missing module decides the answer, an unreadable
    // one only leaves it open.
    problems.sort_by_key(Problem::is_error);
    Ok(Closure {
        members: members.len(),
        problems: problems
            .into_iter()
            .map(|p| {
                let c = chain(p.at());
                (p, c)
            })
            .collect(),
    })
}
