//! Step timings for the debug log (network create, connect, a plugin's link adopted).

/// Where a connect or a create spent its time, for the log: a few marks, no allocation.
pub(crate) struct Laps {
    last: std::time::Instant,
    laps: [(&'static str, std::time::Duration); 12],
    n: usize,
}

impl Laps {
    pub(crate) fn start() -> Self {
        Laps {
            last: std::time::Instant::now(),
            laps: [("", std::time::Duration::ZERO); 12],
            n: 0,
        }
    }

    pub(crate) fn mark(&mut self, what: &'static str) {
        let now = std::time::Instant::now();
        if let Some(slot) = self.laps.get_mut(self.n) {
            *slot = (what, now - self.last);
            self.n += 1;
        }
        self.last = now;
    }
}

impl std::fmt::Display for Laps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (what, d)) in self.laps[..self.n].iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{what} {d:?}")?;
        }
        Ok(())
    }
}
