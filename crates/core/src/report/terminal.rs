//! The terminal report, InSpec-like: one line per control in profile order,
//! the failing checks under it, then the summaries.
//!
//! ```text
//! Profile:   HPC compute node image (compute 1.4.0)
//! Target:    rootfs:/srv/img
//!
//!   ✔  munge-key: MUNGE key is private to munge
//!   ×  shadow-perms: /etc/shadow is not world-readable
//!      × file /etc/shadow: mode: expected at most 0640, got 0666 (profiles/base.toml:40:3)
//!   ↺  gpu-count: skipped: needs a live node
//!
//! Profile Summary: 1 successful control, 1 control failure, 1 control skipped, 0 control errors
//! Test Summary: 2 successful, 1 failure, 1 skipped, 0 errors
//! ```
//!
//! Whether to use colour or draw a progress line is the caller's decision
//! (a TTY, `NO_COLOR`, `--no-color`); this module only obeys
//! [`TerminalOptions`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{CheckResult, ControlResult, Counts, Event, ProfileInfo, Report, Reporter, TargetInfo};
use crate::outcome::{PropertyResult, Status};

/// How the terminal report looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TerminalOptions {
    /// Colour the marks and summaries with ANSI escapes.
    pub color: bool,
    /// Draw a live progress line on the progress writer while checks run.
    pub progress: bool,
}

/// Renders run events for a human: the header when the run starts, each
/// control as soon as it and every control before it are settled (so a CI
/// log shows progress, and the text is the same as one written at the
/// end), a progress bar while checks run (only when given one, and only
/// once the run has lasted [`PROGRESS_DELAY`](TerminalReporter::PROGRESS_DELAY)),
/// then the warnings and summaries.
///
/// ```
/// use nodecheck_core::report::{Reporter, TerminalOptions, TerminalReporter};
///
/// let options = TerminalOptions { color: false, progress: true };
/// let reporter = TerminalReporter::new(Box::new(std::io::stdout()), options)
///     .with_progress_target(indicatif::ProgressDrawTarget::stderr())
///     .verbose(true);
/// let reporters: Vec<Box<dyn Reporter>> = vec![Box::new(reporter)];
/// # drop(reporters);
/// ```
pub struct TerminalReporter {
    out: Box<dyn Write + Send>,
    options: TerminalOptions,
    progress: Option<Progress>,
    verbose: bool,
    width: Option<usize>,
    /// The next control (index in the report) to print.
    next: usize,
    /// Settled controls waiting for an earlier one.
    waiting: BTreeMap<usize, Arc<ControlResult>>,
}

impl TerminalReporter {
    /// How long a run must last before the progress bar appears, so that
    /// fast runs print nothing but the report.
    pub const PROGRESS_DELAY: Duration = Duration::from_millis(250);

    /// A reporter writing the report to `out`. No progress is drawn
    /// until a progress target is given with
    /// [`with_progress_target`](Self::with_progress_target).
    pub fn new(out: Box<dyn Write + Send>, options: TerminalOptions) -> Self {
        TerminalReporter {
            out,
            options,
            progress: None,
            verbose: false,
            width: None,
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// Where the progress bar goes (usually stderr, which indicatif leaves
    /// alone when it is not a terminal). Ignored unless `options.progress`.
    pub fn with_progress_target(mut self, target: ProgressDrawTarget) -> Self {
        if self.options.progress {
            self.progress = Some(Progress::new(target, Self::PROGRESS_DELAY));
        }
        self
    }

    /// Also print the output of each failing or erroring check (the
    /// program's streams, the linkage chain, …) under its lines.
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// The terminal's width: long lines of `verbose` output are cut to it
    /// (to [`DEFAULT_WIDTH`](Self::DEFAULT_WIDTH) when unknown).
    pub fn width(mut self, columns: Option<usize>) -> Self {
        self.width = columns;
        self
    }

    /// Where verbose output lines are cut when the width is unknown (a CI
    /// log): wide enough for a compiler's message.
    pub const DEFAULT_WIDTH: usize = 200;

    fn render(&self) -> Render {
        Render {
            s: String::new(),
            color: self.options.color,
            verbose: self
                .verbose
                .then_some(self.width.unwrap_or(Self::DEFAULT_WIDTH)),
        }
    }

    /// Writes `text` without tearing the progress bar.
    fn print(&mut self, text: &str) -> io::Result<()> {
        let out = &mut self.out;
        let mut write = || out.write_all(text.as_bytes()).and_then(|()| out.flush());
        match &self.progress {
            Some(p) if p.shown => p.bar.suspend(write),
            _ => write(),
        }
    }

    fn flush_ready(&mut self) -> io::Result<()> {
        let mut r = self.render();
        while let Some(c) = self.waiting.remove(&self.next) {
            r.control(&c);
            self.next += 1;
        }
        if r.s.is_empty() {
            return Ok(());
        }
        self.print(&r.s)
    }
}

impl std::fmt::Debug for TerminalReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalReporter")
            .field("options", &self.options)
            .field("progress", &self.progress.is_some())
            .field("verbose", &self.verbose)
            .finish_non_exhaustive()
    }
}

impl Reporter for TerminalReporter {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Started {
                checks,
                profile,
                target,
                ..
            } => {
                if let Some(p) = &mut self.progress {
                    p.start(*checks);
                }
                let mut r = self.render();
                r.header(profile, target);
                self.print(&r.s)
            }
            Event::CheckStarted { control, check } => {
                if let Some(p) = &mut self.progress {
                    p.check_started(control, check);
                }
                Ok(())
            }
            Event::CheckFinished { .. } => {
                if let Some(p) = &mut self.progress {
                    p.check_finished();
                }
                Ok(())
            }
            Event::ControlFinished { index, result } => {
                if *index >= self.next {
                    self.waiting.insert(*index, Arc::clone(result));
                }
                self.flush_ready()
            }
            Event::Finished(report) => {
                if let Some(p) = &mut self.progress {
                    p.erase();
                }
                // Whatever has not been printed: controls an interrupt
                // left unsettled, or all of them for a runner that never
                // sent `ControlFinished`.
                let mut r = self.render();
                for c in report.controls.iter().skip(self.next) {
                    r.control(c);
                }
                self.next = report.controls.len();
                self.waiting.clear();
                r.footer(report);
                self.print(&r.s)
            }
        }
    }
}

/// Writes the human report of a finished run; with `color`, marks and
/// summaries carry ANSI colour escapes.
///
/// ```
/// use nodecheck_core::report::{Report, write_terminal};
///
/// fn print(report: &Report) -> std::io::Result<()> {
///     write_terminal(report, false, &mut std::io::stdout().lock())
/// }
/// ```
pub fn write_terminal(report: &Report, color: bool, w: &mut dyn Write) -> io::Result<()> {
    let mut r = Render {
        s: String::new(),
        color,
        verbose: None,
    };
    r.report(report);
    w.write_all(r.s.as_bytes())
}

/// The mark and colour of each outcome.
#[derive(Clone, Copy)]
enum Mark {
    Pass,
    Fail,
    Skip,
    Error,
    Waived,
}

impl Mark {
    fn of(status: Status) -> Mark {
        match status {
            Status::Pass => Mark::Pass,
            Status::Fail => Mark::Fail,
            Status::Skip => Mark::Skip,
            Status::Error => Mark::Error,
        }
    }

    fn glyph(self) -> &'static str {
        match self {
            Mark::Pass => "✔",
            Mark::Fail => "×",
            Mark::Skip => "↺",
            Mark::Error => "!",
            Mark::Waived => "~",
        }
    }

    fn style(self) -> Style {
        let c = match self {
            Mark::Pass => AnsiColor::Green,
            Mark::Fail => AnsiColor::Red,
            Mark::Skip => AnsiColor::Yellow,
            Mark::Error => AnsiColor::Magenta,
            Mark::Waived => AnsiColor::Cyan,
        };
        Style::new().fg_color(Some(c.into()))
    }
}

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const WARN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));

struct Render {
    s: String,
    color: bool,
    /// With `-v`: show failing checks' output, lines cut to this width.
    verbose: Option<usize>,
}

impl Render {
    /// Appends `text` in `style` (plain when colour is off).
    fn styled(&mut self, style: Style, text: &str) {
        if self.color {
            let _ = write!(self.s, "{style}{text}{style:#}");
        } else {
            self.s.push_str(text);
        }
    }

    fn mark(&mut self, mark: Mark) {
        self.styled(mark.style(), mark.glyph());
    }

    fn report(&mut self, r: &Report) {
        self.header(&r.profile, &r.target);
        for control in &r.controls {
            self.control(control);
        }
        self.footer(r);
    }

    fn header(&mut self, profile: &ProfileInfo, target: &TargetInfo) {
        let name_version = match &profile.version {
            Some(v) => format!("{} {v}", profile.name),
            None => profile.name.clone(),
        };
        let heading = match &profile.title {
            Some(t) => format!("{t} ({name_version})"),
            None => name_version,
        };
        self.s.push_str("Profile:   ");
        self.styled(BOLD, &clean(&heading));
        let _ = write!(self.s, "\nTarget:    {}", clean(&target.description));
        // Which node or image this is: a fleet's reports side by side.
        let id = &target.identity;
        if let Some(name) = id
            .name
            .as_deref()
            .filter(|n| !target.description.contains(n))
        {
            let _ = write!(self.s, " ({})", clean(name));
        }
        if let Some(system) = id.describe() {
            let _ = write!(self.s, "\nSystem:    {}", clean(&system));
        }
        // A packed image's digests (its path, format and size are in the
        // description).
        if let Some(digests) = id.image.as_ref().and_then(|i| i.describe_digests()) {
            let _ = write!(self.s, "\nImage:     {}", clean(&digests));
        }
        self.s.push_str("\n\n");
    }

    fn footer(&mut self, r: &Report) {
        if !r.warnings.is_empty() {
            self.s.push('\n');
            // Each warning is a whole diagnostic: `file:line:col:
            // warning[code]: ...` and the source line with a caret.
            for w in &r.warnings {
                let w = clean(w);
                let (first, rest) = w.split_once('\n').unwrap_or((&w, ""));
                self.styled(WARN, first);
                if !rest.is_empty() {
                    self.s.push('\n');
                    self.lines(rest, "");
                }
                self.s.push('\n');
            }
        }

        self.s.push('\n');
        self.summaries(&r.summary.controls, &r.summary.checks);
    }

    fn control(&mut self, c: &ControlResult) {
        let id = clean(&c.id);
        let title = c.title.as_deref().map(clean);
        let with_title = |id: &str| match &title {
            Some(t) => format!("{id}: {t}"),
            None => id.to_owned(),
        };
        self.s.push_str("  ");
        if let Some(reason) = c.waived_failure() {
            self.mark(Mark::Waived);
            let _ = write!(self.s, "  {id}: ");
            self.styled(Mark::Waived.style(), "waived:");
            self.s.push(' ');
            self.lines(&clean(reason), "     ");
            self.s.push('\n');
            self.problem_checks(c);
            return;
        }
        match c.status {
            Status::Pass => {
                self.mark(Mark::Pass);
                let _ = writeln!(self.s, "  {}", with_title(&id));
            }
            Status::Skip => {
                self.mark(Mark::Skip);
                let _ = write!(self.s, "  {id}: skipped: ");
                self.lines(&clean(&c.skip_message()), "     ");
                self.s.push('\n');
                return;
            }
            Status::Fail => {
                self.mark(Mark::Fail);
                let _ = writeln!(self.s, "  {}", with_title(&id));
            }
            Status::Error => {
                self.mark(Mark::Error);
                let _ = write!(self.s, "  {} ", with_title(&id));
                self.styled(Mark::Error.style(), "(error)");
                self.s.push('\n');
            }
        }
        self.problem_checks(c);
    }

    /// The failing, erroring and skipped checks of a control that ran,
    /// indented under it. Passing checks are left out.
    fn problem_checks(&mut self, c: &ControlResult) {
        for check in &c.checks {
            match check.status {
                Status::Pass => {}
                Status::Skip => {
                    self.s.push_str("     ");
                    self.mark(Mark::Skip);
                    let _ = write!(self.s, " {}: skipped: ", clean(&check.name));
                    self.lines(&clean(&c.check_skip_message(check)), "       ");
                    self.s.push('\n');
                }
                Status::Fail | Status::Error => self.problems(check),
            }
        }
    }

    /// One line per failing or erroring property:
    /// `× file /etc/shadow: mode: expected 0640, got 0666 (file:line:col)`.
    fn problems(&mut self, check: &CheckResult) {
        let name = clean(&check.name);
        let location = check.location.to_string();
        let mut any = false;
        for p in check.problems() {
            any = true;
            self.problem_line(Mark::of(p.status), &name, Some(p), &location);
        }
        if !any {
            // A failing check with no failing property: a bug in a kind,
            // but the line must still say which check it was.
            self.problem_line(Mark::of(check.status), &name, None, &location);
        }
        if let Some(width) = self.verbose
            && !check.output.trim().is_empty()
        {
            self.output(&check.output, width);
        }
    }

    /// A check's long output under its lines (`-v`): dimmed, indented,
    /// each line cut to `width` columns, and only the head and tail of a
    /// long text (the compiler's first error and the loader's last word).
    fn output(&mut self, text: &str, width: usize) {
        const INDENT: &str = "       | ";
        const HEAD: usize = 20;
        const TAIL: usize = 20;
        let text = clean(text);
        let lines: Vec<&str> = text.lines().collect();
        let room = width.saturating_sub(INDENT.len()).max(20);
        let show = |line: &str, this: &mut Self| {
            let line = line.replace('\t', "    ");
            this.s.push_str(INDENT);
            this.styled(DIM, &cut(&line, room));
            this.s.push('\n');
        };
        if lines.len() <= HEAD + TAIL + 1 {
            for l in &lines {
                show(l, self);
            }
            return;
        }
        for l in &lines[..HEAD] {
            show(l, self);
        }
        let skipped = lines.len() - HEAD - TAIL;
        show(&format!("… {skipped} lines left out …"), self);
        for l in &lines[lines.len() - TAIL..] {
            show(l, self);
        }
    }

    fn problem_line(&mut self, mark: Mark, name: &str, p: Option<&PropertyResult>, location: &str) {
        self.s.push_str("     ");
        self.mark(mark);
        let _ = write!(self.s, " {name}: ");
        match p {
            Some(p) => self.lines(&clean(&p.message), "       "),
            None => self.s.push_str(check_word(mark)),
        }
        self.s.push(' ');
        self.styled(DIM, &format!("({})", clean(location)));
        self.s.push('\n');
    }

    /// Appends possibly multi-line `text`, indenting continuation lines.
    fn lines(&mut self, text: &str, indent: &str) {
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                self.s.push('\n');
                self.s.push_str(indent);
            }
            self.s.push_str(line);
        }
    }

    fn summaries(&mut self, controls: &Counts, checks: &Counts) {
        self.s.push_str("Profile Summary: ");
        self.count(
            Mark::Pass,
            controls.passed,
            "successful control",
            "successful controls",
        );
        self.s.push_str(", ");
        self.count(
            Mark::Fail,
            controls.failed,
            "control failure",
            "control failures",
        );
        self.s.push_str(", ");
        self.count(
            Mark::Skip,
            controls.skipped,
            "control skipped",
            "controls skipped",
        );
        self.waived(controls.waived);
        self.s.push_str(", ");
        self.count(
            Mark::Error,
            controls.errored,
            "control error",
            "control errors",
        );
        self.s.push('\n');

        self.s.push_str("Test Summary: ");
        self.count(Mark::Pass, checks.passed, "successful", "successful");
        self.s.push_str(", ");
        self.count(Mark::Fail, checks.failed, "failure", "failures");
        self.s.push_str(", ");
        self.count(Mark::Skip, checks.skipped, "skipped", "skipped");
        self.waived(checks.waived);
        self.s.push_str(", ");
        self.count(Mark::Error, checks.errored, "error", "errors");
        self.s.push('\n');
    }

    /// `N thing(s)`, coloured only when N > 0 so zeros do not draw the eye.
    fn count(&mut self, mark: Mark, n: usize, one: &str, many: &str) {
        let text = format!("{n} {}", if n == 1 { one } else { many });
        if n > 0 {
            self.styled(mark.style(), &text);
        } else {
            self.s.push_str(&text);
        }
    }

    fn waived(&mut self, n: usize) {
        if n > 0 {
            let _ = write!(self.s, " ({n} waived)");
        }
    }
}

/// `line` cut to `width` characters, the cut marked with `…` (a line of
/// a 50 MB file stays one line).
fn cut(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_owned();
    }
    let mut s: String = line.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn check_word(mark: Mark) -> &'static str {
    match mark {
        Mark::Error => "error",
        _ => "failed",
    }
}

/// Text from the target (file contents, command output) may carry escape
/// sequences; printed raw they could rewrite the terminal. Control
/// characters other than newline and tab are shown escaped instead.
fn clean(s: &str) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The live `[12/340] control / check` bar, as wide as the terminal
/// (indicatif measures it and cuts the message to fit).
struct Progress {
    bar: ProgressBar,
    /// Where the bar goes once the run has lasted `delay`.
    target: Option<ProgressDrawTarget>,
    delay: Duration,
    started: Instant,
    shown: bool,
}

impl Progress {
    fn new(target: ProgressDrawTarget, delay: Duration) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("[{pos}/{len}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress {
            bar,
            target: Some(target),
            delay,
            started: Instant::now(),
            shown: false,
        }
    }

    fn start(&mut self, total: usize) {
        self.started = Instant::now();
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
    }

    fn check_started(&mut self, control: &str, check: &str) {
        let text = format!("{control} / {check}");
        self.bar
            .set_message(clean(&text).replace(['\n', '\t'], " "));
        self.maybe_show();
    }

    fn check_finished(&mut self) {
        self.bar.inc(1);
        self.maybe_show();
    }

    fn maybe_show(&mut self) {
        if !self.shown
            && self.started.elapsed() >= self.delay
            && let Some(t) = self.target.take()
        {
            self.bar.set_draw_target(t);
            self.shown = true;
            self.bar.tick();
        }
    }

    /// Clears the bar, if one was drawn, before the summaries.
    fn erase(&mut self) {
        if self.shown {
            self.bar.finish_and_clear();
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::report::test_report::{check, control, hostile, report, sample};

    /// A `Write` the test can read back after handing it to a reporter.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn render(report: &Report, color: bool) -> String {
        let mut buf = Vec::new();
        write_terminal(report, color, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    /// Every report names the target's identity: terminal header, JUnit
    /// properties, a Prometheus info metric.
    #[test]
    fn identity_is_in_every_report() {
        let mut r = sample();
        *r.target.identity = crate::identity::TargetIdentity {
            name: Some("node042".into()),
            os: Some(crate::identity::OsRelease {
                pretty_name: Some("Rocky Linux 9.4 (Blue Onyx)".into()),
                version_id: Some("9.4".into()),
            }),
            kernel: Some("5.14.0-427".into()),
            image_release: Some("img-\x1b[2J2026.07".into()),
            image: None,
        };
        let t = render(&r, false);
        assert!(t.contains("Target:    rootfs:/srv/img (node042)\n"), "{t}");
        assert!(
            t.contains("System:    Rocky Linux 9.4 (Blue Onyx), kernel 5.14.0-427, release img-"),
            "{t}"
        );
        assert!(!t.contains('\x1b'), "{t}");
        let mut buf = Vec::new();
        crate::report::write_junit(&r, &mut buf).unwrap();
        let x = String::from_utf8(buf).unwrap();
        assert!(
            x.contains("<property name=\"target_name\" value=\"node042\"/>"),
            "{x}"
        );
        assert!(
            x.contains("<property name=\"kernel\" value=\"5.14.0-427\"/>"),
            "{x}"
        );
        let mut buf = Vec::new();
        crate::report::write_prometheus(&r, crate::profile::Severity::Low, &mut buf).unwrap();
        let p = String::from_utf8(buf).unwrap();
        assert!(
            p.contains("nodecheck_target_info{profile=\"compute\",kind=\"rootfs\",name=\"node042\",os=\"Rocky Linux 9.4 (Blue Onyx)\",os_version=\"9.4\",kernel=\"5.14.0-427\","),
            "{p}"
        );
    }

    /// A packed image is named by its file, format, size and digests in
    /// every report; the file's sha256 only when it was asked for.
    #[test]
    fn image_identity_is_in_every_report() {
        let mut r = sample();
        r.target.kind = crate::target::TargetKind::Image;
        r.target.description =
            "oci-archive:/srv/img/compute.oci.tar (uncompressed, 4096 bytes)".into();
        let manifest = format!("sha256:{}", "a".repeat(64));
        let config = format!("sha256:{}", "c".repeat(64));
        *r.target.identity = crate::identity::TargetIdentity {
            name: Some("compute.oci.tar".into()),
            image: Some(crate::identity::ImageIdentity {
                path: "/srv/img/compute.oci.tar".into(),
                format: "oci-archive".into(),
                size: 4096,
                digest: Some(manifest.clone()),
                config_digest: Some(config.clone()),
                sha256: None,
            }),
            ..Default::default()
        };
        let t = render(&r, false);
        assert!(
            t.contains(&format!(
                "\nImage:     manifest {manifest}, image ID {config}\n"
            )),
            "{t}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["target"]["image"]["digest"], manifest.as_str());
        assert_eq!(json["target"]["image"]["format"], "oci-archive");
        assert_eq!(json["target"]["image"]["size"], 4096);
        assert!(json["target"]["image"].get("sha256").is_none(), "{json}");
        let mut buf = Vec::new();
        crate::report::write_junit(&r, &mut buf).unwrap();
        let x = String::from_utf8(buf).unwrap();
        for (name, value) in [
            ("image_path", "/srv/img/compute.oci.tar"),
            ("image_format", "oci-archive"),
            ("image_size", "4096"),
            ("image_digest", manifest.as_str()),
            ("image_config_digest", config.as_str()),
        ] {
            assert!(
                x.contains(&format!("<property name=\"{name}\" value=\"{value}\"/>")),
                "{name}: {x}"
            );
        }
        assert!(!x.contains("image_sha256"), "{x}");
        let mut buf = Vec::new();
        crate::report::write_prometheus(&r, crate::profile::Severity::Low, &mut buf).unwrap();
        let p = String::from_utf8(buf).unwrap();
        assert!(
            p.contains(&format!(",image=\"/srv/img/compute.oci.tar\",image_format=\"oci-archive\",image_size=\"4096\",image_digest=\"{manifest}\",image_config_digest=\"{config}\",image_sha256=\"\"}} 1\n")),
            "{p}"
        );

        // Asked for, the file's sha256 joins them.
        let image = r.target.identity.image.as_mut().unwrap();
        image.sha256 = Some("f".repeat(64));
        let t = render(&r, false);
        assert!(
            t.contains(&format!(", file sha256:{}\n", "f".repeat(64))),
            "{t}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["target"]["image"]["sha256"], "f".repeat(64));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(render(&sample(), false));
    }

    #[test]
    fn no_escapes_without_colour_and_some_with() {
        assert!(!render(&sample(), false).contains('\x1b'));
        let colored = render(&sample(), true);
        assert!(colored.contains("\x1b[32m✔\x1b[0m"), "{colored}");
        // Colour does not change the words.
        let stripped: String = {
            let re = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
            re.replace_all(&colored, "").into_owned()
        };
        assert_eq!(stripped, render(&sample(), false));
    }

    #[test]
    fn summary_phrases_and_plurals() {
        let one = |status_ok: bool| {
            check(
                "file",
                "/x",
                1,
                vec![crate::outcome::PropertyResult::compare(
                    "mode", status_ok, "1", "2",
                )],
            )
        };
        let r = report(
            vec![
                control("a", None, 1, vec![one(true)]),
                control("b", None, 2, vec![one(false)]),
            ],
            vec![],
        );
        let text = render(&r, false);
        assert!(
            text.contains(
                "Profile Summary: 1 successful control, 1 control failure, 0 controls skipped, 0 control errors\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("Test Summary: 1 successful, 1 failure, 0 skipped, 0 errors\n"),
            "{text}"
        );
        let text = render(&sample(), false);
        assert!(text.contains(
            "Profile Summary: 2 successful controls, 1 control failure, 2 controls skipped (1 waived), 1 control error\n"
        ), "{text}");
        assert!(
            text.contains("Test Summary: 3 successful, 1 failure, 3 skipped (1 waived), 1 error\n"),
            "{text}"
        );
    }

    #[test]
    fn target_text_cannot_inject_escapes() {
        let text = render(&hostile(), false);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(!text.contains('\0'), "{text}");
        assert!(text.contains("\\u{1b}[31mred"), "{text}");
    }

    /// A run of [`sample`] as the runner tells it: controls settle out of
    /// order; `after_control` sees the output after each.
    fn events(r: &mut TerminalReporter, mut after_control: impl FnMut(usize)) {
        let report = Arc::new(sample());
        r.event(&crate::report::test_report::started()).unwrap();
        for (n, c) in report.controls.iter().enumerate() {
            for k in &c.checks {
                r.event(&Event::CheckStarted {
                    control: c.id.clone(),
                    check: k.name.clone(),
                })
                .unwrap();
                r.event(&Event::CheckFinished {
                    control: c.id.clone(),
                    check: k.name.clone(),
                    status: k.status,
                })
                .unwrap();
            }
            // 1, 0, 3, 2, 5, 4
            let index = n ^ 1;
            r.event(&Event::ControlFinished {
                index,
                result: Arc::new(report.controls[index].clone()),
            })
            .unwrap();
            after_control(index);
        }
        r.event(&Event::Finished(report)).unwrap();
    }

    fn options(progress: bool) -> TerminalOptions {
        TerminalOptions {
            color: false,
            progress,
        }
    }

    #[test]
    fn controls_are_printed_as_they_settle_in_profile_order() {
        let out = Shared::default();
        let mut r = TerminalReporter::new(Box::new(out.clone()), options(false));
        let full = render(&sample(), false);
        let mut seen = Vec::new();
        events(&mut r, |_| seen.push(out.text()));
        assert_eq!(out.text(), full);
        // Control 1 settled first: nothing past the header until 0 did.
        assert!(
            seen[0].ends_with("Target:    rootfs:/srv/img\n\n"),
            "{}",
            seen[0]
        );
        assert!(seen[1].contains("shadow-perms"), "{}", seen[1]);
        assert!(!seen[1].contains("gpu-count"), "{}", seen[1]);
        // Every prefix is a prefix of the final text: nothing is rewritten.
        for s in &seen {
            assert!(full.starts_with(s.as_str()));
        }
    }

    #[test]
    fn unsettled_controls_come_with_the_final_report() {
        let out = Shared::default();
        let mut r = TerminalReporter::new(Box::new(out.clone()), options(false));
        r.event(&crate::report::test_report::started()).unwrap();
        r.event(&Event::Finished(Arc::new(sample()))).unwrap();
        assert_eq!(out.text(), render(&sample(), false));
    }

    #[test]
    fn verbose_shows_failing_output_cut_to_the_width() {
        let mut report = sample();
        let long = format!("{}END", "x".repeat(300));
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        report.controls[4].checks[0].output = format!("{long}\n{}", lines.join("\n"));
        // A passing check's output is not shown.
        report.controls[0].checks[0].output = "passing noise".into();
        let out = Shared::default();
        let mut r = TerminalReporter::new(Box::new(out.clone()), options(false))
            .verbose(true)
            .width(Some(60));
        r.event(&Event::Finished(Arc::new(report))).unwrap();
        let text = out.text();
        assert!(!text.contains("passing noise"), "{text}");
        assert!(text.contains("       | xxxxx"), "{text}");
        assert!(!text.contains("END"), "{text}");
        assert!(text.contains("… 61 lines left out …"), "{text}");
        assert!(text.contains("| line 0\n"), "{text}");
        assert!(text.contains("| line 99\n"), "{text}");
        for l in text.lines().filter(|l| l.starts_with("       | ")) {
            assert!(l.chars().count() <= 60, "{l}");
        }
        // Without -v the output stays out of the terminal.
        let plain = render(&sample(), false);
        assert!(!plain.contains("starting 2 ranks"), "{plain}");
    }

    #[test]
    fn no_progress_when_disabled() {
        let out = Shared::default();
        let term = indicatif::InMemoryTerm::new(4, 40);
        let mut r = TerminalReporter::new(Box::new(out.clone()), options(false))
            .with_progress_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        events(&mut r, |_| {});
        assert_eq!(term.contents(), "");
        assert_eq!(out.text(), render(&sample(), false));
    }

    #[test]
    fn fast_runs_print_no_progress() {
        let out = Shared::default();
        let term = indicatif::InMemoryTerm::new(4, 40);
        let mut r = TerminalReporter::new(Box::new(out.clone()), options(true))
            .with_progress_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        events(&mut r, |_| {});
        assert_eq!(term.contents(), "");
        assert_eq!(out.text(), render(&sample(), false));
    }

    #[test]
    fn the_progress_bar_fits_the_terminal_and_is_erased() {
        for width in [30u16, 80] {
            let out = Shared::default();
            let term = indicatif::InMemoryTerm::new(4, width);
            let mut r = TerminalReporter::new(Box::new(out.clone()), options(true));
            r.event(&crate::report::test_report::started()).unwrap();
            // As if the delay had passed already.
            let mut p = Progress::new(
                ProgressDrawTarget::term_like(Box::new(term.clone())),
                Duration::ZERO,
            );
            p.start(3);
            p.check_started("a-rather-long-control-name", &"x".repeat(200));
            let drawn = term.contents();
            assert!(drawn.starts_with("[0/3] a-rather-"), "{drawn:?}");
            for line in drawn.lines() {
                assert!(line.chars().count() <= width as usize, "{line:?}");
            }
            assert_eq!(drawn.lines().count(), 1, "{drawn:?}");
            r.progress = Some(p);
            r.event(&Event::Finished(Arc::new(sample()))).unwrap();
            assert_eq!(term.contents(), "", "erased");
            assert_eq!(out.text(), render(&sample(), false));
        }
    }
}
