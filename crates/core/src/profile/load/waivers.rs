//! Pass 4: waivers matched to controls.

use std::collections::BTreeMap;

use super::{Expanded, Loader, WAIVER_KEYS};
use crate::profile::raw::{Sv, V};
use crate::profile::vars::{Scope, VarValue, interpolate};
use crate::profile::{Diagnostic, Waiver};

impl Loader<'_> {
    pub(super) fn waivers(
        &mut self,
        controls: &mut [Expanded],
        waivers: &[Sv],
        vars: &BTreeMap<String, VarValue>,
        today: chrono::NaiveDate,
    ) {
        let scope = Scope { layers: vec![vars] };
        for w in waivers {
            let w = interpolate(w, &scope, &mut self.diags);
            let Some(entries) = w.as_table() else {
                self.wrong_type(&w, "a waiver", "a table");
                continue;
            };
            let mut control = None;
            let mut reason = None;
            let mut expires = None;
            for e in entries {
                match e.key.as_str() {
                    "control" => {
                        control = self
                            .string(&e.value, "`control`")
                            .map(|s| (s, e.value.clone()))
                    }
                    "reason" => reason = self.string(&e.value, "`reason`"),
                    "expires" => {
                        let text = match &e.value.v {
                            V::Str(s) | V::Datetime(s) => Some(s.clone()),
                            _ => None,
                        };
                        match text
                            .as_deref()
                            .map(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d"))
                        {
                            Some(Ok(d)) => expires = Some((d, text.unwrap_or_default())),
                            _ => self.diags.push(e.value.diag(Diagnostic::error(
                                "bad-date",
                                "`expires` must be a date written YYYY-MM-DD",
                            ))),
                        }
                    }
                    other => self.unknown_key(&e.key_at, other, "in [[waiver]]", WAIVER_KEYS),
                }
            }
            let (Some((pattern, at)), Some(reason)) = (control, reason) else {
                self.diags.push(w.diag(Diagnostic::error(
                    "missing-key",
                    "a waiver needs `control` (an id or glob) and `reason`",
                )));
                continue;
            };
            if let Some((date, text)) = &expires
                && *date < today
            {
                self.diags.push(w.diag(Diagnostic::warning(
                    "expired-waiver",
                    format!("waiver for {pattern:?} expired on {text} and is ignored ({reason})"),
                )));
                continue;
            }
            let Some(m) = self.glob(&at, &pattern) else {
                continue;
            };
            let waiver = Waiver {
                control: pattern.clone(),
                reason,
                expires: expires.map(|(_, t)| t),
                location: Some(w.loc.clone()),
            };
            let mut used = false;
            for c in controls.iter_mut() {
                if m.is_match(&c.control.id) || m.is_match(&c.base_id) {
                    c.control.waiver = Some(waiver.clone());
                    used = true;
                }
            }
            if !used {
                self.diags.push(w.diag(Diagnostic::warning(
                    "unused-waiver",
                    format!("waiver for {pattern:?} matches no control"),
                )));
            }
        }
    }
}
