//! What packagers and editors generate from the binary: the profile JSON
//! Schema, shell completions and man pages. All three come from the same
//! definitions the binary runs with (the kind registry, the clap parser), so
//! they cannot drift from it.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;

use crate::exit;

/// `nodecheck schema`: the profile JSON Schema on stdout.
pub fn schema() -> u8 {
    let schema = nodecheck_core::schema::profile_schema(nodecheck_checks::KINDS);
    let mut text = serde_json::to_string_pretty(&schema).expect("a JSON value serialises");
    text.push('\n');
    crate::quiet_pipe(io::stdout().lock().write_all(text.as_bytes()))
}

/// `nodecheck completions SHELL`.
pub fn completions<C: CommandFactory>(shell: clap_complete::Shell) -> u8 {
    let mut cmd = C::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "nodecheck", &mut out);
    crate::quiet_pipe(io::stdout().lock().write_all(&out))
}

/// `nodecheck manpages DIR`: nodecheck.1 and nodecheck-SUB.1 for each
/// visible subcommand.
pub fn manpages<C: CommandFactory>(dir: &Path) -> u8 {
    let cmd = C::command();
    let result = (|| -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_page(&cmd, "nodecheck", dir)?;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("nodecheck-{}", sub.get_name());
            let sub = sub
                .clone()
                .display_name(name.clone())
                .bin_name(format!("nodecheck {}", sub.get_name()));
            write_page(&sub, &name, dir)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!(
                "nodecheck: cannot write man pages to {}: {e}",
                dir.display()
            );
            exit::USAGE
        }
    }
}

fn write_page(cmd: &clap::Command, name: &str, dir: &Path) -> io::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(dir.join(format!("{name}.1")), buf)
}
