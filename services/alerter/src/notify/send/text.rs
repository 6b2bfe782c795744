//! The words of a notice, shared by the kinds that speak to people (Slack, Discord, Telegram,
//! ntfy, e-mail): a one-line summary and a body of one line per transition.
//!
//! Every service caps its fields (Discord 2,000 characters of content, Telegram 4,096, Slack's
//! section 3,000, ntfy 4,096 bytes before a message becomes an attachment), and a group can
//! hold hundreds of transitions: the summary names at most a few servers and a count, and
//! [`fit_lines`] cuts a body at a whole line with "… and N more" so nothing is rejected for
//! its length and the reader learns how much was left out.

use std::collections::HashSet;

use flick_shared::alerting::rules::Metric;
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState};

use super::super::notice::Notice;

/// Servers a one-category group summary names before "and N more".
const NAMED_ALONE: usize = 5;
/// Servers each category of a mixed group names before "+N more".
const NAMED_PER_CATEGORY: usize = 3;
/// A summary never grows beyond this (server ids are up to 64 characters each).
const SUMMARY_MAX_CHARS: usize = 250;

/// One line: "CRITICAL: CPU usage 97.0 % on web-01", "3 alerts: 2 offline (web-01, web-02),
/// 1 resolved (db-01)", "50 servers offline: web-01, …, web-05 and 45 more".
pub fn summary(notice: &Notice) -> String {
    summary_for(notice, None)
}

/// [`summary`], naming the channel in a test notice ("FLick test notification from channel
/// ops"): the person who pressed "send test" sees which channel reached them.
pub fn summary_for(notice: &Notice, channel: Option<&str>) -> String {
    let line = if notice.test {
        match channel {
            Some(name) => format!("FLick test notification from channel {name}"),
            None => "FLick test notification".to_owned(),
        }
    } else {
        let line = match notice.events.as_slice() {
            [] => "No alert transitions".to_owned(),
            [event] => single_summary(event),
            events => group_summary(events),
        };
        if notice.repeat {
            format!("Still firing: {line}")
        } else {
            line
        }
    };
    truncate_chars(&single_line(&line), SUMMARY_MAX_CHARS)
}

/// One line per transition: severity, state, server, metric, value and threshold, time. A
/// test notice says it is a test first; a repeat says nothing changed.
pub fn body_text(notice: &Notice) -> String {
    let mut out = String::new();
    if notice.test {
        out.push_str(
            "This is a test notification from FLick: no alert is firing. The transition below is an example.\n\n",
        );
    } else if notice.repeat {
        out.push_str("Still firing: nothing changed since the last notification.\n\n");
    }
    for event in &notice.events {
        out.push_str(&event_line(event));
        out.push('\n');
    }
    out
}

/// "CRITICAL firing: web-01 cpu 97.0 % (threshold 90.0 %) at 2026-01-02 10:00:00 UTC".
pub fn event_line(event: &AlertEvent) -> String {
    let mut line = format!(
        "{} {}: {} {}",
        severity_word(event.severity),
        state_word(event.state),
        single_line(event.server_id.as_str()),
        event.metric,
    );
    if let Some(value) = event.value {
        line.push(' ');
        line.push_str(&format_value(&event.metric, value));
    }
    if let Some(threshold) = event.threshold {
        line.push_str(&format!(
            " (threshold {})",
            format_value(&event.metric, threshold)
        ));
    }
    line.push_str(&format!(" at {}", event.at.format("%Y-%m-%d %H:%M:%S UTC")));
    if event.state == AlertState::Resolved && event.started_at < event.at {
        line.push_str(&format!(
            ", firing since {}",
            event.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if let Some(message) = event.message.as_deref().filter(|m| !m.trim().is_empty()) {
        line.push_str(" - ");
        line.push_str(&single_line(message));
    }
    line
}

/// What the worst transition of a notice is, for colours, priorities and tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tone {
    Resolved,
    Warning,
    Critical,
}

/// The worst transition: critical if any critical alert fires, warning if any warning fires,
/// resolved if everything resolved.
pub fn tone(notice: &Notice) -> Tone {
    notice
        .events
        .iter()
        .map(|event| match (event.state, event.severity) {
            (AlertState::Resolved, _) => Tone::Resolved,
            (AlertState::Firing, AlertSeverity::Warning) => Tone::Warning,
            (AlertState::Firing, AlertSeverity::Critical) => Tone::Critical,
        })
        .max()
        .unwrap_or(Tone::Resolved)
}

/// The latest transition time of a notice (its events are in decision order, not time order).
pub fn latest_at(notice: &Notice) -> Option<chrono::DateTime<chrono::Utc>> {
    notice.events.iter().map(|event| event.at).max()
}

fn single_summary(event: &AlertEvent) -> String {
    let server = single_line(event.server_id.as_str());
    // A container alert's own sentence names the container and what became of it
    // ("container web-1 stopped (exited 137) on web-01").
    if let Some(container) = &event.container {
        let prefix = match event.state {
            AlertState::Firing => severity_word(event.severity),
            AlertState::Resolved => "RESOLVED",
        };
        return match &event.message {
            Some(message) => format!("{prefix}: {}", single_line(message)),
            // A firing alert taken over from a previous leader has no sentence of its own.
            None => format!(
                "{prefix}: {} {} on {server}",
                metric_label(&event.metric),
                single_line(container)
            ),
        };
    }
    match (event.metric.as_str(), event.state) {
        ("offline", AlertState::Firing) => {
            format!("{}: {server} is offline", severity_word(event.severity))
        }
        ("offline", AlertState::Resolved) => format!("RESOLVED: {server} is back online"),
        (metric, state) => {
            let prefix = match state {
                AlertState::Firing => severity_word(event.severity),
                AlertState::Resolved => "RESOLVED",
            };
            let value = event
                .value
                .map(|value| format!(" {}", format_value(metric, value)))
                .unwrap_or_default();
            format!("{prefix}: {}{value} on {server}", metric_label(metric))
        }
    }
}

/// The category a transition is counted under in a group summary.
fn category(event: &AlertEvent) -> String {
    match (event.metric.as_str(), event.state) {
        (_, AlertState::Resolved) => "resolved".to_owned(),
        ("offline", AlertState::Firing) => "offline".to_owned(),
        (metric, AlertState::Firing) => format!(
            "{} {}",
            metric_short(metric),
            severity_word(event.severity).to_ascii_lowercase()
        ),
    }
}

fn group_summary(events: &[AlertEvent]) -> String {
    // Categories in the order they first appear, each with its transitions' servers.
    let mut categories: Vec<(String, usize, Vec<String>)> = Vec::new();
    for event in events {
        let name = category(event);
        let server = single_line(event.server_id.as_str());
        match categories.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, count, servers)) => {
                *count += 1;
                if !servers.contains(&server) {
                    servers.push(server);
                }
            }
            None => categories.push((name, 1, vec![server])),
        }
    }
    if let [(name, count, servers)] = categories.as_slice() {
        let noun = if servers.len() == *count {
            "servers"
        } else {
            "alerts"
        };
        return format!(
            "{count} {noun} {name}: {}",
            name_some(servers, NAMED_ALONE, " and {} more")
        );
    }
    let parts: Vec<String> = categories
        .iter()
        .map(|(name, count, servers)| {
            format!(
                "{count} {name} ({})",
                name_some(servers, NAMED_PER_CATEGORY, " +{} more")
            )
        })
        .collect();
    let distinct: HashSet<&str> = events.iter().map(|e| e.server_id.as_str()).collect();
    let noun = if distinct.len() == 1 {
        format!(" on {}", single_line(events[0].server_id.as_str()))
    } else {
        String::new()
    };
    format!("{} alerts{noun}: {}", events.len(), parts.join(", "))
}

/// The first `limit` names, then `more` with the rest's count (`{}` replaced).
fn name_some(names: &[String], limit: usize, more: &str) -> String {
    let shown = names
        .iter()
        .take(limit)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(limit) {
        0 => shown,
        rest => format!("{shown}{}", more.replace("{}", &rest.to_string())),
    }
}

fn severity_word(severity: AlertSeverity) -> &'static str {
    match severity {
        AlertSeverity::Warning => "WARNING",
        AlertSeverity::Critical => "CRITICAL",
    }
}

fn state_word(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    }
}

fn metric_label(metric: &str) -> String {
    match metric {
        "cpu" => "CPU usage".to_owned(),
        "memory" => "Memory usage".to_owned(),
        "disk" => "Disk usage".to_owned(),
        "temperature" => "Temperature".to_owned(),
        other => other.replace('_', " "),
    }
}

fn metric_short(metric: &str) -> String {
    match metric {
        "cpu" => "CPU".to_owned(),
        other => other.replace('_', " "),
    }
}

/// A sampled metric's value in its unit (percent; °C for temperature); a plain number for the
/// others (an exit code) and for metrics FLick does not know yet.
fn format_value(metric: &str, value: f64) -> String {
    match Metric::parse(metric).filter(|m| Metric::SAMPLED.contains(m)) {
        Some(metric) => format!("{value:.1}{}", metric.unit()),
        None => format!("{value:.1}"),
    }
}

/// Control characters (a newline in a server id or message) become spaces: a line stays one
/// line, and nothing can forge a second line in a header.
pub fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `max` characters, the last one an ellipsis when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    truncate_by(text, max, |s| s.chars().count())
}

/// At most `max` of `measure` (characters, UTF-16 units, bytes: measures that add up over
/// characters), cut at a character boundary and ended with "…" when cut.
pub fn truncate_by(text: &str, max: usize, measure: impl Fn(&str) -> usize) -> String {
    if measure(text) <= max {
        return text.to_owned();
    }
    let ellipsis = measure("…");
    let Some(budget) = max.checked_sub(ellipsis) else {
        return String::new();
    };
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let width = measure(c.encode_utf8(&mut buf));
        if used + width > budget {
            break;
        }
        used += width;
        out.push(c);
    }
    out.push('…');
    out
}

/// Whole lines of `text` within `max` of `measure`, then "… and N more" for the lines left
/// out; a first line longer than `max` on its own is cut.
pub fn fit_lines(text: &str, max: usize, measure: impl Fn(&str) -> usize) -> String {
    if measure(text) <= max {
        return text.to_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let newline = measure("\n");
    let mut kept = String::new();
    let mut used = 0;
    for (index, line) in lines.iter().enumerate() {
        let width = measure(line) + newline;
        // Room for this line and, after it, the "… and N more" of the lines still left.
        let tail_after = measure(&format!("… and {} more", lines.len() - index - 1));
        if used + width + tail_after > max {
            if kept.is_empty() {
                return truncate_by(text, max, measure);
            }
            return format!("{kept}… and {} more", lines.len() - index);
        }
        used += width;
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// Length as JavaScript and Telegram count it (UTF-16 code units), never less than the
/// character count: a safe measure for every service's "characters".
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use flick_shared::wire::ServerId;

    use super::*;

    fn event(server: &str, metric: &str, severity: AlertSeverity, state: AlertState) -> AlertEvent {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 10, 0, 0)
            .single()
            .expect("a valid time");
        AlertEvent {
            v: 1,
            id: Uuid::new_v4(),
            alert_id: Uuid::new_v4(),
            server_id: ServerId::parse(server).expect("valid id"),
            metric: metric.into(),
            severity,
            state,
            value: (metric != "offline").then_some(97.0),
            threshold: (metric != "offline").then_some(90.0),
            started_at: at - chrono::Duration::minutes(5),
            at,
            message: None,
            top_processes: Vec::new(),
            container: None,
        }
    }

    fn notice(events: Vec<AlertEvent>) -> Notice {
        Notice {
            id: Uuid::new_v4(),
            events,
            repeat: false,
            test: false,
        }
    }

    use AlertSeverity::{Critical, Warning};
    use AlertState::{Firing, Resolved};

    #[test]
    fn one_transition_reads_as_a_sentence() {
        let cpu = notice(vec![event("web-01", "cpu", Critical, Firing)]);
        assert_eq!(summary(&cpu), "CRITICAL: CPU usage 97.0 % on web-01");
        let offline = notice(vec![event("web-01", "offline", Critical, Firing)]);
        assert_eq!(summary(&offline), "CRITICAL: web-01 is offline");
        let back = notice(vec![event("web-01", "offline", Critical, Resolved)]);
        assert_eq!(summary(&back), "RESOLVED: web-01 is back online");
        let mut repeat = notice(vec![event("db-01", "disk", Warning, Firing)]);
        repeat.repeat = true;
        assert_eq!(
            summary(&repeat),
            "Still firing: WARNING: Disk usage 97.0 % on db-01"
        );
        let mut stopped = event("web-01", "container_stopped", Critical, Firing);
        stopped.container = Some("web-1".into());
        stopped.message = Some("container web-1 stopped (exited 137) on web-01".into());
        assert_eq!(
            summary(&notice(vec![stopped])),
            "CRITICAL: container web-1 stopped (exited 137) on web-01"
        );
        // Taken over from a previous leader (no sentence): still names the container.
        let mut repeated = event("web-01", "container_stopped", Critical, Firing);
        repeated.container = Some("web-1".into());
        assert_eq!(
            summary(&notice(vec![repeated])),
            "CRITICAL: container stopped web-1 on web-01"
        );
        let hot = notice(vec![event("web-01", "temperature", Warning, Firing)]);
        assert_eq!(summary(&hot), "WARNING: Temperature 97.0 °C on web-01");
    }

    #[test]
    fn a_group_counts_by_category_and_names_its_servers() {
        let group = notice(vec![
            event("web-01", "offline", Critical, Firing),
            event("web-02", "offline", Critical, Firing),
            event("db-01", "cpu", Warning, Resolved),
        ]);
        assert_eq!(
            summary(&group),
            "3 alerts: 2 offline (web-01, web-02), 1 resolved (db-01)"
        );
    }

    #[test]
    fn fifty_servers_offline_name_five_and_count_the_rest() {
        let group = notice(
            (1..=50)
                .map(|i| event(&format!("web-{i:02}"), "offline", Critical, Firing))
                .collect(),
        );
        assert_eq!(
            summary(&group),
            "50 servers offline: web-01, web-02, web-03, web-04, web-05 and 45 more"
        );
        let body = body_text(&group);
        assert_eq!(body.lines().count(), 50);
        let fitted = fit_lines(&body, 1000, utf16_len);
        assert!(utf16_len(&fitted) <= 1000, "{}", utf16_len(&fitted));
        assert!(fitted.ends_with("more"), "{fitted}");
        let shown = fitted.lines().count() - 1;
        assert!(fitted.ends_with(&format!("… and {} more", 50 - shown)));
    }

    #[test]
    fn a_test_notice_says_so_and_names_the_channel() {
        let mut test = notice(vec![event("web-01", "cpu", Critical, Firing)]);
        test.test = true;
        assert_eq!(
            summary_for(&test, Some("ops")),
            "FLick test notification from channel ops"
        );
        assert!(body_text(&test).starts_with("This is a test notification"));
    }

    #[test]
    fn each_line_has_server_metric_severity_state_values_and_time() {
        let line = event_line(&event("web-01", "cpu", Critical, Firing));
        assert_eq!(
            line,
            "CRITICAL firing: web-01 cpu 97.0 % (threshold 90.0 %) at 2026-01-02 10:00:00 UTC"
        );
    }

    #[test]
    fn cutting_respects_the_measure_and_character_boundaries() {
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("héllo wörld", 5), "héll…");
        assert_eq!(truncate_by("ééé", 4, str::len), "…");
        assert_eq!(truncate_by("ééé", 5, str::len), "é…");
        assert_eq!(single_line("a\nb\rc"), "a b c");
        assert_eq!(
            tone(&notice(vec![event("a", "cpu", Warning, Firing)])),
            Tone::Warning
        );
    }
}
