//! The host simulator's checks: per-group invariants from the hosts' events, and whether
//! the world has settled (every group led, agreed, quiet and placed).

use almost_raft_core::machine::{Event, Role};

use super::{HostViolation, World};

impl World {
    pub(super) fn on_event(&mut self, h: usize, group: &str, event: Event) {
        let g = self.group_index[group];
        if std::env::var("TRACE_GROUP").is_ok_and(|t| t == group) {
            eprintln!("{:?} {} {group} {event:?}", self.now, self.ids[h]);
        }
        match event {
            Event::RoleChanged {
                role: Role::Leader,
                term,
            } => {
                self.report.elections_won += 1;
                if let Some(&other) = self.leader_of.get(&(g, term))
                    && other != h
                {
                    self.pending = Some(format!(
                        "group {group}: two leaders in term {term}: {} and {}",
                        self.ids[other], self.ids[h]
                    ));
                }
                self.leader_of.insert((g, term), h);
            }
            Event::LeaderChanged { term, .. } => {
                let last = self.fencing.entry((g, h)).or_insert(0);
                if term < *last {
                    self.pending = Some(format!(
                        "group {group}: {}'s fencing term went down from {last} to {term}",
                        self.ids[h]
                    ));
                }
                *last = term;
            }
            // Told after its lease ended by its own clock (a write or a stop delayed the
            // event): `holds_lease` says no, so an application that checks it does not act.
            Event::LeaseChanged { held: true, .. } if !self.still_holds(h, group) => {}
            Event::LeaseChanged { held: true, term } => {
                let holders = self.lease_holders.entry(g).or_default();
                if let Some((other, other_term)) = holders.iter().find(|(o, _)| *o != h) {
                    self.pending = Some(format!(
                        "group {group}: {} holds the lease of term {term} while {} holds that of term {other_term}",
                        self.ids[h], self.ids[*other]
                    ));
                }
                holders.retain(|(o, _)| *o != h);
                holders.push((h, term));
            }
            Event::LeaseChanged { held: false, .. } | Event::Stopped => {
                if let Some(holders) = self.lease_holders.get_mut(&g) {
                    holders.retain(|(o, _)| *o != h);
                }
            }
            _ => {}
        }
    }

    /// Whether host `h` holds `group`'s lease now, read on its own clock.
    fn still_holds(&mut self, h: usize, group: &str) -> bool {
        let local = self.hosts[h].clock.local(self.now);
        self.hosts[h]
            .host
            .as_mut()
            .is_some_and(|host| host.holds_lease(local, group).unwrap_or(false))
    }

    pub(super) fn check_after_step(&mut self) -> Result<(), Box<HostViolation>> {
        match self.pending.take() {
            Some(what) => Err(self.violation(what)),
            None => Ok(()),
        }
    }

    /// Whether every group has a leader that every voter knows, in one term.
    pub(super) fn all_led(&mut self) -> Result<bool, Box<HostViolation>> {
        for g in 0..self.groups.len() {
            let (id, voters, _) = self.groups[g].clone();
            let mut seen: Option<(Option<String>, u64)> = None;
            for &v in &voters {
                let local = self.hosts[v].clock.local(self.now);
                let Some(host) = self.hosts[v].host.as_mut() else {
                    return Ok(false);
                };
                let status = host.status(local, &id).expect("hosted");
                let here = (status.leader.clone(), status.term);
                if here.0.is_none() || seen.as_ref().is_some_and(|s| *s != here) {
                    self.unsettled = Some(id.clone());
                    return Ok(false);
                }
                seen = Some(here);
            }
        }
        for h in 0..self.config.hosts {
            self.after_host(h);
        }
        Ok(true)
    }

    pub(super) fn describe_unsettled(&mut self) -> String {
        if self.settled {
            // Led and agreed: name a group that is not quiet everywhere.
            self.unsettled = self
                .groups
                .iter()
                .find(|(id, voters, _)| {
                    voters.iter().any(|v| {
                        self.hosts[*v]
                            .host
                            .as_ref()
                            .is_some_and(|h| !h.is_quiet(id).unwrap_or(true))
                    })
                })
                .map(|(id, _, _)| id.clone());
        }
        let Some(group) = self.unsettled.clone() else {
            return String::new();
        };
        let g = self.group_index[&group];
        let mut out = format!("group {group}:");
        for &v in &self.groups[g].1.clone() {
            let local = self.hosts[v].clock.local(self.now);
            if let Some(host) = self.hosts[v].host.as_mut() {
                let s = host.status(local, &group).expect("hosted");
                let quiet = host.is_quiet(&group).expect("hosted");
                out += &format!(
                    " {} {:?} term {} leader {:?} voted {:?} quiet {quiet};",
                    self.ids[v], s.role, s.term, s.leader, s.voted_for
                );
            }
        }
        out
    }

    pub(super) fn print_counts(&self) {
        let per_host: Vec<String> = self
            .hosts
            .iter()
            .map(|sim| match &sim.host {
                Some(h) => {
                    let s = h.stats();
                    let _ = sim
                        .clock
                        .local(self.now)
                        .checked_sub(h.next_deadline())
                        .map(|late| eprint!("[{} late {late:?}] ", h.id()));
                    format!(
                        "lead {} quiet {} balance {} deferred {} disk {:?} queue {}",
                        s.leading,
                        s.quiet,
                        s.handovers_for_balance,
                        s.campaigns_deferred,
                        sim.disk_delay,
                        sim.writing.len()
                    )
                }
                None => "down".into(),
            })
            .collect();
        eprintln!(
            "{:>6.1}s datagrams {} elections {} | {}",
            self.now.as_secs_f64(),
            self.report.datagrams,
            self.report.elections_won,
            per_host.join(" | ")
        );
    }

    /// Whether every host leads within one group and 2% of its fair share (placement's band).
    pub(super) fn balanced(&self) -> bool {
        let mut share = vec![0f64; self.config.hosts];
        for (_, voters, _) in &self.groups {
            for v in voters {
                share[*v] += 1.0 / voters.len() as f64;
            }
        }
        self.hosts.iter().zip(share).all(|(h, share)| {
            let led = h.host.as_ref().map_or(0, |h| h.stats().leading) as f64;
            (led - share).abs() <= share * 0.02 + 1.0
        })
    }

    pub(super) fn balance_handovers(&self) -> u64 {
        self.hosts
            .iter()
            .filter_map(|h| h.host.as_ref())
            .map(|h| h.stats().handovers_for_balance)
            .sum()
    }

    pub(super) fn all_quiet(&self) -> bool {
        let replicas = self.config.groups * self.config.voters.min(self.config.hosts);
        let quiet: usize = self
            .hosts
            .iter()
            .filter_map(|h| h.host.as_ref())
            .map(|h| h.stats().quiet)
            .sum();
        quiet == replicas
    }
}
