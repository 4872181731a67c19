//! The faults the host simulator injects: partitions (also one-way), crashes and restarts,
//! replayed and garbage datagrams, loss and delay, a host stopped for a while; and the heal
//! after the last.

use std::time::Duration;

use rand::RngExt;

use super::{Action, World};

impl World {
    pub(super) fn fault(&mut self) {
        let n = self.config.hosts;
        match self.rng.random_range(0..11) {
            0..=2 => {
                self.heal_network();
                // A partition: one host alone, both ways or one way.
                let h = self.rng.random_range(0..n);
                let one_way = self.rng.random_bool(0.3);
                for o in (0..n).filter(|o| *o != h) {
                    self.blocked[h][o] = true;
                    self.blocked[o][h] = !one_way;
                }
                self.report.partitions += 1;
                if std::env::var("TRACE_GROUP").is_ok() {
                    eprintln!("{:?} partition {} one-way {one_way}", self.now, self.ids[h]);
                }
            }
            3 | 4 => {
                if std::env::var("TRACE_GROUP").is_ok() {
                    eprintln!("{:?} heal network", self.now);
                }
                self.heal_network()
            }
            5 | 6 => {
                let h = self.rng.random_range(0..n);
                if self.hosts[h].host.is_some() {
                    self.crash(h);
                    let back = Duration::from_millis(self.rng.random_range(50..2000));
                    self.schedule(back, Action::Restart { host: h });
                }
            }
            7 => {
                // A replayed datagram, or bytes no honest host sends.
                let to = self.rng.random_range(0..n);
                let bytes = if !self.captured.is_empty() && self.rng.random_bool(0.5) {
                    let i = self.rng.random_range(0..self.captured.len());
                    self.captured[i].1.clone()
                } else {
                    let len = self.rng.random_range(0..64);
                    (0..len).map(|_| self.rng.random::<u8>()).collect()
                };
                self.schedule(Duration::from_millis(1), Action::Deliver { to, bytes });
            }
            8 => {
                // Stopped (SIGSTOP) for one to four election timeouts.
                let h = self.rng.random_range(0..n);
                if self.hosts[h].host.is_some() && !self.hosts[h].paused {
                    self.pause(h);
                    let t = self.config.election_timeout;
                    let back = t.mul_f64(self.rng.random_range(1.0..4.0));
                    self.schedule(back, Action::Resume { host: h });
                }
            }
            _ => {
                self.loss = self.rng.random_range(0.0..0.3);
                self.max_delay_ms = self.rng.random_range(1..40);
            }
        }
    }

    pub(super) fn heal_network(&mut self) {
        for row in &mut self.blocked {
            row.iter_mut().for_each(|b| *b = false);
        }
    }

    pub(super) fn heal(&mut self) {
        self.heal_network();
        self.loss = 0.0;
        self.duplicate = 0.0;
        self.max_delay_ms = 2;
        for h in 0..self.config.hosts {
            if self.hosts[h].paused {
                self.resume(h);
            }
            if self.hosts[h].host.is_none() {
                self.start(h);
            }
        }
    }

    pub(super) fn crash(&mut self, h: usize) {
        if std::env::var("TRACE_GROUP").is_ok() {
            eprintln!("{:?} crash {}", self.now, self.ids[h]);
        }
        self.report.crashes += 1;
        let sim = &mut self.hosts[h];
        sim.host = None;
        sim.paused = false;
        sim.inbox.clear();
        sim.writing.clear(); // writes not done are lost, and what they would have sent
        sim.timer_generation += 1;
        for holders in self.lease_holders.values_mut() {
            holders.retain(|(holder, _)| *holder != h);
        }
    }
}

impl World {
    pub(super) fn pause(&mut self, h: usize) {
        if std::env::var("TRACE_GROUP").is_ok() {
            eprintln!("{:?} pause {}", self.now, self.ids[h]);
        }
        self.report.pauses += 1;
        self.hosts[h].paused = true;
        // A frozen process acts on nothing; what it does when it resumes past its lease is
        // not covered by the lease (docs/design.md: fence with the term).
        for holders in self.lease_holders.values_mut() {
            holders.retain(|(holder, _)| *holder != h);
        }
    }

    /// Runs again: writes that finished meanwhile are seen, the clock has jumped, and the
    /// socket buffer is read, in an order the seed draws (a runtime's wake-up order).
    pub(super) fn resume(&mut self, h: usize) {
        if std::env::var("TRACE_GROUP").is_ok() {
            eprintln!("{:?} resume {}", self.now, self.ids[h]);
        }
        let sim = &mut self.hosts[h];
        if !sim.paused {
            return;
        }
        sim.paused = false;
        let inbox = std::mem::take(&mut sim.inbox);
        let timers_first = self.rng.random_bool(0.5);
        if timers_first {
            self.fire_timers(h);
        }
        self.disk_done(h);
        for bytes in inbox {
            let local = self.hosts[h].clock.local(self.now);
            if let Some(host) = self.hosts[h].host.as_mut() {
                let _ = host.receive(local, &bytes);
            }
            self.after_host(h);
        }
        if !timers_first {
            self.fire_timers(h);
        }
        self.after_host(h);
    }

    fn fire_timers(&mut self, h: usize) {
        let local = self.hosts[h].clock.local(self.now);
        if let Some(host) = self.hosts[h].host.as_mut() {
            host.handle_timeout(local);
        }
        self.after_host(h);
    }
}
