//! What makes a rule valid, in one place: the alerter checks its `[alerter]` defaults with it at
//! start-up, the gateway checks every rule a user sets or previews with it, and the CHECK
//! constraints of `alert_rules` and `alert_defaults` say the same in SQL (the last line of
//! defence, not the one users meet).
//!
//! - thresholds are percentages, 0 to 100 (temperature: 0 to 150 °C), and warning is not
//!   above critical;
//! - `for` is 0 to 86,400 s (a day); for `offline`, the silence is 2 to 86,400 s (a sample a
//!   second that arrives a little late must not page);
//! - the hysteresis margin is 0 to 50 points (more would keep an alert on a low threshold
//!   from ever resolving);
//! - `offline` has no thresholds.

use std::ops::RangeInclusive;

use super::rules::{Metric, Rule};

/// Thresholds, percent.
pub const PERCENT: RangeInclusive<f64> = 0.0..=100.0;
/// Temperature thresholds, °C: hardware protects itself by 105-125 °C.
pub const CELSIUS: RangeInclusive<f64> = 0.0..=150.0;
/// `for`, seconds.
pub const FOR_SECS: RangeInclusive<i64> = 0..=86_400;
/// `offline`'s silence, seconds.
pub const OFFLINE_FOR_SECS: RangeInclusive<i64> = 2..=86_400;
/// Hysteresis, points below the threshold.
pub const MARGIN: RangeInclusive<f64> = 0.0..=50.0;

/// The part of a rule that is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Warning,
    Critical,
    ForSecs,
    Margin,
}

impl Field {
    /// Its name in the REST API's JSON.
    pub fn api_name(self) -> &'static str {
        match self {
            Field::Warning => "warning",
            Field::Critical => "critical",
            Field::ForSecs => "forSecs",
            Field::Margin => "margin",
        }
    }
}

/// Why a rule was refused: the field, and what it must be (a phrase following the field's
/// name: "must be 0 to 86400").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} {message}", field.api_name())]
pub struct Invalid {
    pub field: Field,
    pub message: String,
}

fn invalid(field: Field, message: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        field,
        message: message.into(),
    })
}

/// Checks `rule` as a rule of `metric`. A disabled rule is checked too: enabling it later must
/// not bring nonsense into force.
pub fn check(metric: Metric, rule: &Rule) -> Result<(), Invalid> {
    let for_secs = rule.for_secs();
    if metric == Metric::Offline {
        if rule.warning.is_some() {
            return invalid(
                Field::Warning,
                "is not used by offline (only forSecs and enabled)",
            );
        }
        if rule.critical.is_some() {
            return invalid(
                Field::Critical,
                "is not used by offline (only forSecs and enabled)",
            );
        }
        if !OFFLINE_FOR_SECS.contains(&for_secs) {
            return invalid(Field::ForSecs, "must be 2 to 86400");
        }
        return Ok(());
    }
    let (range, what) = match metric {
        Metric::Temperature => (CELSIUS, "must be 0 to 150 (°C)"),
        _ => (PERCENT, "must be a percentage (0 to 100)"),
    };
    for (field, value) in [
        (Field::Warning, rule.warning),
        (Field::Critical, rule.critical),
    ] {
        if let Some(value) = value
            && !(value.is_finite() && range.contains(&value))
        {
            return invalid(field, what);
        }
    }
    if let (Some(warning), Some(critical)) = (rule.warning, rule.critical)
        && warning > critical
    {
        return invalid(Field::Warning, "must not be above critical");
    }
    if !FOR_SECS.contains(&for_secs) {
        return invalid(Field::ForSecs, "must be 0 to 86400");
    }
    if !(rule.margin.is_finite() && MARGIN.contains(&rule.margin)) {
        return invalid(Field::Margin, "must be 0 to 50");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn field(metric: Metric, rule: Rule) -> Option<Field> {
        check(metric, &rule).err().map(|e| e.field)
    }

    #[test]
    fn the_edges_of_every_range_are_valid() {
        for rule in [
            Rule::percent(0.0, 0.0, 0, 0.0),
            Rule::percent(100.0, 100.0, 86_400, 50.0),
            Rule::percent(80.0, 90.0, 10, 5.0),
        ] {
            assert_eq!(check(Metric::Cpu, &rule), Ok(()), "{rule:?}");
        }
        assert_eq!(
            check(Metric::Temperature, &Rule::percent(95.0, 150.0, 30, 5.0)),
            Ok(())
        );
        assert_eq!(check(Metric::Offline, &Rule::offline(2)), Ok(()));
        assert_eq!(check(Metric::Offline, &Rule::offline(86_400)), Ok(()));
    }

    #[test]
    fn each_kind_of_nonsense_names_its_field() {
        let good = Rule::percent(80.0, 90.0, 10, 5.0);
        let cases = [
            (
                Rule {
                    warning: Some(-1.0),
                    ..good
                },
                Field::Warning,
            ),
            (
                Rule {
                    warning: Some(f64::NAN),
                    ..good
                },
                Field::Warning,
            ),
            (
                Rule {
                    critical: Some(100.5),
                    ..good
                },
                Field::Critical,
            ),
            (Rule::percent(95.0, 90.0, 10, 5.0), Field::Warning),
            (
                Rule {
                    hold: Duration::seconds(86_401),
                    ..good
                },
                Field::ForSecs,
            ),
            (
                Rule {
                    hold: Duration::seconds(-1),
                    ..good
                },
                Field::ForSecs,
            ),
            (
                Rule {
                    margin: 50.5,
                    ..good
                },
                Field::Margin,
            ),
            (
                Rule {
                    margin: -0.1,
                    ..good
                },
                Field::Margin,
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(field(Metric::Memory, rule), Some(expected), "{rule:?}");
        }
        assert_eq!(
            field(Metric::Offline, Rule::offline(1)),
            Some(Field::ForSecs)
        );
        assert_eq!(
            field(
                Metric::Offline,
                Rule {
                    warning: Some(1.0),
                    ..Rule::offline(30)
                }
            ),
            Some(Field::Warning)
        );
        let disabled = Rule {
            enabled: false,
            ..Rule::percent(95.0, 90.0, 10, 5.0)
        };
        assert_eq!(field(Metric::Disk, disabled), Some(Field::Warning));
        assert_eq!(
            field(Metric::Temperature, Rule::percent(90.0, 150.5, 10, 5.0)),
            Some(Field::Critical)
        );
        assert_eq!(
            check(Metric::Temperature, &Rule::percent(-1.0, 90.0, 10, 5.0))
                .map_err(|e| e.to_string()),
            Err("warning must be 0 to 150 (°C)".to_owned())
        );
    }

    #[test]
    fn a_message_starts_with_the_field_name_the_api_uses() {
        let err =
            check(Metric::Cpu, &Rule::percent(80.0, 90.0, 100_000, 5.0)).expect_err("too long");
        assert_eq!(err.to_string(), "forSecs must be 0 to 86400");
    }
}
