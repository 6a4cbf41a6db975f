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

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};

use super::{CheckResult, ControlResult, Counts, Event, Report, Reporter};
use crate::outcome::{PropertyResult, Status};

/// How the terminal report looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TerminalOptions {
    /// Colour the marks and summaries with ANSI escapes.
    pub color: bool,
    /// Draw a live progress line on the progress writer while checks run.
    pub progress: bool,
}

/// Renders run events for a human: a progress line while the run goes on
/// (only when asked for, and only once the run has lasted
/// [`PROGRESS_DELAY`](TerminalReporter::PROGRESS_DELAY)), then the report.
///
/// ```
/// use nodecheck_core::report::{Reporter, TerminalOptions, TerminalReporter};
///
/// let options = TerminalOptions { color: false, progress: true };
/// let reporter = TerminalReporter::new(Box::new(std::io::stdout()), options)
///     .with_progress_writer(Box::new(std::io::stderr()));
/// let reporters: Vec<Box<dyn Reporter>> = vec![Box::new(reporter)];
/// # drop(reporters);
/// ```
pub struct TerminalReporter {
    out: Box<dyn Write + Send>,
    options: TerminalOptions,
    progress: Option<Progress>,
}

impl TerminalReporter {
    /// How long a run must last before the progress line appears, so that
    /// fast runs print nothing but the report.
    pub const PROGRESS_DELAY: Duration = Duration::from_millis(250);

    /// A reporter writing the final report to `out`. No progress is drawn
    /// until a progress writer is given with
    /// [`with_progress_writer`](Self::with_progress_writer).
    pub fn new(out: Box<dyn Write + Send>, options: TerminalOptions) -> Self {
        TerminalReporter {
            out,
            options,
            progress: None,
        }
    }

    /// Where the progress line goes (usually stderr). Ignored, and never
    /// written to, unless `options.progress` is true.
    pub fn with_progress_writer(mut self, w: Box<dyn Write + Send>) -> Self {
        if self.options.progress {
            self.progress = Some(Progress::new(w, Self::PROGRESS_DELAY, Progress::REDRAW));
        }
        self
    }
}

impl std::fmt::Debug for TerminalReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalReporter")
            .field("options", &self.options)
            .field("progress", &self.progress.is_some())
            .finish_non_exhaustive()
    }
}

impl Reporter for TerminalReporter {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Started { checks, .. } => {
                if let Some(p) = &mut self.progress {
                    p.start(*checks);
                }
                Ok(())
            }
            Event::CheckStarted { control, check } => match &mut self.progress {
                Some(p) => p.check_started(control, check),
                None => Ok(()),
            },
            Event::CheckFinished { control, check, .. } => match &mut self.progress {
                Some(p) => p.check_finished(control, check),
                None => Ok(()),
            },
            Event::Finished(report) => {
                if let Some(p) = &mut self.progress {
                    p.erase()?;
                }
                write_terminal(report, self.options.color, &mut *self.out)?;
                self.out.flush()
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
    let mut s = String::new();
    Render { s: &mut s, color }.report(report);
    w.write_all(s.as_bytes())
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

struct Render<'a> {
    s: &'a mut String,
    color: bool,
}

impl Render<'_> {
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
        let profile = &r.profile;
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
        let _ = write!(self.s, "\nTarget:    {}\n\n", clean(&r.target.description));

        for control in &r.controls {
            self.control(control);
        }

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

/// The live `[12/340] running: control / check` line.
struct Progress {
    w: Box<dyn Write + Send>,
    delay: Duration,
    /// Minimum time between redraws (`REDRAW` outside tests).
    redraw: Duration,
    started: Instant,
    /// When the line was last drawn.
    drawn: Option<Instant>,
    total: usize,
    done: usize,
    /// What to show: the most recently started check.
    current: String,
}

impl Progress {
    /// Redraws are limited to ~10 a second so that a run of many quick
    /// checks does not flood a slow terminal.
    const REDRAW: Duration = Duration::from_millis(100);
    /// Long names are cut so the line never wraps on an 80-column terminal
    /// (a wrapped line cannot be erased with `\r`).
    const WIDTH: usize = 79;

    fn new(w: Box<dyn Write + Send>, delay: Duration, redraw: Duration) -> Self {
        Progress {
            w,
            delay,
            redraw,
            started: Instant::now(),
            drawn: None,
            total: 0,
            done: 0,
            current: String::new(),
        }
    }

    fn start(&mut self, total: usize) {
        self.started = Instant::now();
        self.total = total;
        self.done = 0;
    }

    fn check_started(&mut self, control: &str, check: &str) -> io::Result<()> {
        self.current = format!("{control} / {check}");
        self.maybe_draw()
    }

    fn check_finished(&mut self, _control: &str, _check: &str) -> io::Result<()> {
        self.done += 1;
        self.maybe_draw()
    }

    fn maybe_draw(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if now.duration_since(self.started) < self.delay {
            return Ok(());
        }
        if self
            .drawn
            .is_some_and(|t| now.duration_since(t) < self.redraw)
        {
            return Ok(());
        }
        self.drawn = Some(now);
        let mut line = format!(
            "[{}/{}] running: {}",
            self.done,
            self.total,
            clean(&self.current).replace(['\n', '\t'], " ")
        );
        if line.chars().count() > Self::WIDTH {
            line = line.chars().take(Self::WIDTH - 1).collect();
            line.push('…');
        }
        write!(self.w, "\r\x1b[2K{line}")?;
        self.w.flush()
    }

    /// Clears the line, if one was drawn, before the report is printed.
    fn erase(&mut self) -> io::Result<()> {
        if self.drawn.take().is_some() {
            self.w.write_all(b"\r\x1b[2K")?;
            self.w.flush()?;
        }
        Ok(())
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

    fn events(r: &mut TerminalReporter) {
        r.event(&Event::Started {
            controls: 1,
            checks: 2,
        })
        .unwrap();
        for check in ["file /a", "file /b"] {
            r.event(&Event::CheckStarted {
                control: "c".into(),
                check: check.into(),
            })
            .unwrap();
            r.event(&Event::CheckFinished {
                control: "c".into(),
                check: check.into(),
                status: Status::Pass,
            })
            .unwrap();
        }
        r.event(&Event::Finished(Arc::new(sample()))).unwrap();
    }

    #[test]
    fn no_progress_when_disabled() {
        let (out, progress) = (Shared::default(), Shared::default());
        let options = TerminalOptions {
            color: false,
            progress: false,
        };
        let mut r = TerminalReporter::new(Box::new(out.clone()), options)
            .with_progress_writer(Box::new(progress.clone()));
        events(&mut r);
        assert_eq!(progress.text(), "");
        assert_eq!(out.text(), render(&sample(), false));
    }

    #[test]
    fn fast_runs_print_no_progress() {
        let (out, progress) = (Shared::default(), Shared::default());
        let options = TerminalOptions {
            color: false,
            progress: true,
        };
        let mut r = TerminalReporter::new(Box::new(out.clone()), options)
            .with_progress_writer(Box::new(progress.clone()));
        events(&mut r);
        assert_eq!(progress.text(), "");
        assert_eq!(out.text(), render(&sample(), false));
    }

    #[test]
    fn slow_runs_draw_progress_and_erase_it() {
        let (out, progress) = (Shared::default(), Shared::default());
        let mut r = TerminalReporter::new(
            Box::new(out.clone()),
            TerminalOptions {
                color: false,
                progress: true,
            },
        );
        // As if the delay had passed already, redrawing on every event.
        r.progress = Some(Progress::new(
            Box::new(progress.clone()),
            Duration::ZERO,
            Duration::ZERO,
        ));
        events(&mut r);
        assert_eq!(
            progress.text(),
            "\r\x1b[2K[0/2] running: c / file /a\
             \r\x1b[2K[1/2] running: c / file /a\
             \r\x1b[2K[1/2] running: c / file /b\
             \r\x1b[2K[2/2] running: c / file /b\
             \r\x1b[2K"
        );
        assert_eq!(out.text(), render(&sample(), false));
    }

    #[test]
    fn redraws_are_throttled() {
        let progress = Shared::default();
        let mut p = Progress::new(Box::new(progress.clone()), Duration::ZERO, Duration::MAX);
        p.start(3);
        for _ in 0..3 {
            p.check_started("c", "file /a").unwrap();
            p.check_finished("c", "file /a").unwrap();
        }
        assert_eq!(progress.text(), "\r\x1b[2K[0/3] running: c / file /a");
    }

    #[test]
    fn progress_line_is_cut_to_one_terminal_line() {
        let progress = Shared::default();
        let mut p = Progress::new(Box::new(progress.clone()), Duration::ZERO, Duration::ZERO);
        p.start(1);
        p.check_started("control", &"x".repeat(200)).unwrap();
        let text = progress.text();
        let line = text.trim_start_matches("\r\x1b[2K");
        assert_eq!(line.chars().count(), Progress::WIDTH);
        assert!(line.ends_with('…'));
    }
}
