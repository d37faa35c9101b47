//! Docker's go-units wording, shared by the daemon ("Up 5 seconds") and the CLI
//! ("5 seconds ago").

/// go-units `HumanDuration` of a number of seconds.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (minutes, hours) = (s / 60, (s as f64 / 3600.0 + 0.5) as i64);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration as d;

    #[test]
    fn durations_like_go_units() {
        assert_eq!(d(0), "Less than a second");
        assert_eq!(d(1), "1 second");
        assert_eq!(d(59), "59 seconds");
        assert_eq!(d(60), "About a minute");
        assert_eq!(d(59 * 60), "59 minutes");
        assert_eq!(d(3599), "59 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(5400), "2 hours");
        assert_eq!(d(2 * 3600), "2 hours");
        assert_eq!(d(47 * 3600), "47 hours");
        assert_eq!(d(3 * 86400), "3 days");
        assert_eq!(d(15 * 86400), "2 weeks");
        assert_eq!(d(20 * 86400), "2 weeks");
        assert_eq!(d(90 * 86400), "3 months");
        assert_eq!(d(800 * 86400), "2 years");
        assert_eq!(d(3 * 365 * 86400), "3 years");
    }
}
