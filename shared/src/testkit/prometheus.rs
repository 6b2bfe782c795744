//! Reading a service's own Prometheus counters, as an operator's dashboard would.

use std::time::Duration;

/// The sum of counter `name` over its series on `<base>/metrics`, only the series whose labels
/// contain `label` (such as `stream="metrics"`) when it is not empty; `None` when the page does
/// not answer.
pub async fn counter(base: &str, name: &str, label: &str) -> Option<u64> {
    let page = super::http()
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let sum: f64 = page
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|line| label.is_empty() || line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    Some(sum as u64)
}
