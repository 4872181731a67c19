//! What the application is told: events for every change of role, leader and lease since it
//! was last told, and the last events of a node that stops.

use std::time::Duration;

use super::{Event, Machine};

impl Machine {
    /// Tells the application the node stopped: its last role and leader, then `Stopped`.
    /// Events not handed out yet, and those of the output whose save failed, may speak of a
    /// state that was never saved: they are replaced by what is true, in the saved term.
    pub(super) fn announce_stopped(&mut self) {
        let term = self.durable.term;
        self.events.clear();
        self.events.push(Event::RoleChanged {
            role: self.role,
            term,
        });
        self.events.push(Event::LeaderChanged {
            leader: self.leader.clone(),
            term,
        });
        self.announced_role = self.role;
        self.announced_leader = (self.leader.clone(), term);
        if self.announced_lease {
            // A stopped node leads no more; its lease went with its role.
            self.announced_lease = false;
            self.events.push(Event::LeaseChanged { held: false, term });
        }
        self.events.push(Event::Stopped);
    }

    /// Queues the events that tell the application what changed since it was last told.
    pub(super) fn announce(&mut self, now: Duration) {
        let held = self.holds_lease(now);
        if !held && self.announced_lease {
            // Lost before any other change is told: whoever acts on the lease stops first.
            self.announced_lease = false;
            self.events.push(Event::LeaseChanged {
                held: false,
                term: self.announced_leader.1,
            });
        }
        if self.role != self.announced_role {
            self.announced_role = self.role;
            self.events.push(Event::RoleChanged {
                role: self.role,
                term: self.term,
            });
        }
        let (leader, term) = &self.announced_leader;
        if *leader != self.leader || (self.leader.is_some() && *term != self.term) {
            self.events.push(Event::LeaderChanged {
                leader: self.leader.clone(),
                term: self.term,
            });
        }
        self.announced_leader = (self.leader.clone(), self.term);
        if held && !self.announced_lease {
            self.announced_lease = true;
            self.events.push(Event::LeaseChanged {
                held: true,
                term: self.term,
            });
        }
    }
}
