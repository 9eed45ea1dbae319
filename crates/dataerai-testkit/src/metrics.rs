//! Samples of the server's `/metrics` (Prometheus text exposition).

/// The value of `sample` (a name, with its labels if it has any, e.g.
/// `dataerai_errors_total{code="ERR_NO_SPACE"}`) in `text`; 0 when absent.
pub fn metric_value(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == sample).then(|| v.trim().parse::<f64>().ok())?
        })
        .filter(|v| v.is_finite() && *v >= 0.0)
        // Prometheus prints any number as a float (`1.5e3`); negative and
        // non-finite values were filtered out just above.
        .map_or(0, |v| {
            #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
            let n = v.round() as u64;
            n
        })
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn finds_exact_samples_only() {
        let text = "# HELP x\nx_total 3\nx_total_more 9\ny{code=\"A B\"} 2\nz 1.5e3\n";
        assert_eq!(metric_value(text, "x_total"), 3);
        assert_eq!(metric_value(text, "y{code=\"A B\"}"), 2);
        assert_eq!(metric_value(text, "z"), 1500);
        assert_eq!(metric_value(text, "absent"), 0);
    }
}
