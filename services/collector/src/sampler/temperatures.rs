//! Temperature sensors (sysinfo's components: hwmon on Linux) as the sample reports them.
//!
//! A sensor that cannot be read is left out rather than reported as 0 °C: a chart or a rule
//! must see "no reading", not a cold machine. sysinfo gives NaN on Linux for a value it failed
//! to read, so every figure is checked, not only its presence.

use flick_shared::wire::Temperature;

/// One sensor as sysinfo reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading<'a> {
    pub label: &'a str,
    pub celsius: Option<f32>,
    pub max_celsius: Option<f32>,
    pub critical_celsius: Option<f32>,
}

/// The readable sensors, in sysinfo's order, with one decimal (more than any sensor resolves:
/// most count in whole or half degrees).
pub fn from_readings<'a>(readings: impl IntoIterator<Item = Reading<'a>>) -> Vec<Temperature> {
    readings
        .into_iter()
        .filter_map(|reading| {
            Some(Temperature {
                label: reading.label.replace('\0', ""),
                celsius: degrees(reading.celsius)?,
                max_celsius: degrees(reading.max_celsius),
                critical_celsius: degrees(reading.critical_celsius),
            })
        })
        .collect()
}

/// A plausible reading, rounded to a tenth of a degree; `None` for NaN and for what no sensor
/// can read (the range the wire accepts).
fn degrees(value: Option<f32>) -> Option<f64> {
    let value = f64::from(value?);
    (value.is_finite() && (-273.15..=1000.0).contains(&value))
        .then(|| (value * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(label: &str, celsius: Option<f32>) -> Reading<'_> {
        Reading {
            label,
            celsius,
            max_celsius: None,
            critical_celsius: None,
        }
    }

    #[test]
    fn readable_sensors_are_kept_with_their_limits_and_the_rest_left_out() {
        let temperatures = from_readings([
            Reading {
                label: "coretemp Package id 0",
                celsius: Some(47.000_01),
                max_celsius: Some(82.5),
                critical_celsius: Some(100.0),
            },
            reading("nvme Composite", Some(38.86)),
            reading("acpitz temp1", None),
            reading("broken temp2", Some(f32::NAN)),
            Reading {
                max_celsius: Some(f32::NAN),
                critical_celsius: Some(f32::INFINITY),
                ..reading("amdgpu edge", Some(-5.0))
            },
            reading("bogus", Some(5000.0)),
        ]);
        assert_eq!(
            temperatures,
            [
                Temperature {
                    label: "coretemp Package id 0".into(),
                    celsius: 47.0,
                    max_celsius: Some(82.5),
                    critical_celsius: Some(100.0),
                },
                Temperature {
                    label: "nvme Composite".into(),
                    celsius: 38.9,
                    max_celsius: None,
                    critical_celsius: None,
                },
                Temperature {
                    label: "amdgpu edge".into(),
                    celsius: -5.0,
                    max_celsius: None,
                    critical_celsius: None,
                },
            ]
        );
        assert_eq!(from_readings([]), []);
    }
}
