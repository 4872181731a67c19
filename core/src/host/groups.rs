//! What a host does for each group: the slot it lives in, bringing a quiet group up to date
//! when it is touched, collecting its output, and moving it in and out of quiet.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use super::pair::Pair;
use super::wire::Item;
use super::{Group, Host, Quiet};
use crate::error::Error;
use crate::machine::Role;

/// The most set operations a pair may have waiting for acknowledgement: all of them go with
/// every heartbeat of the pair (about 20 bytes each) until acknowledged.
pub(super) const MAX_PENDING_OPS: usize = 1000;

impl Host {
    pub(super) fn check_running(&self) -> Result<(), Error> {
        if self.stopped {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(super) fn group_seed(&self, group: &str) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.seed, group).hash(&mut h);
        h.finish()
    }

    pub(super) fn slot(&self, group: &str) -> Result<u32, Error> {
        self.index
            .get(group)
            .copied()
            .ok_or_else(|| Error::UnknownGroup(group.to_owned()))
    }

    pub(super) fn group(&self, slot: u32) -> &Group {
        self.groups[slot as usize].as_ref().expect("a live slot")
    }

    pub(super) fn group_mut(&mut self, slot: u32) -> &mut Group {
        self.groups[slot as usize].as_mut().expect("a live slot")
    }

    pub(super) fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.is_some())
            .map(|(i, _)| i as u32)
    }

    pub(super) fn pair_of(&mut self, host: &str) -> u16 {
        if let Some(&p) = self.pair_index.get(host) {
            return p;
        }
        let p = self.pairs.len() as u16;
        self.pairs.push(Pair::new(host.to_owned()));
        self.pair_index.insert(host.to_owned(), p);
        p
    }

    /// Brings a quiet group's machine up to date with what the pairs' heartbeats stood for.
    pub(super) fn touch(&mut self, slot: u32) {
        let stale = self.has_bug("quiet-follower-not-refreshed");
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        match &g.quiet {
            Quiet::Active => {}
            Quiet::Leading { towards, .. } => {
                for &(p, added) in towards {
                    let pair = &self.pairs[p as usize];
                    if let Some(ack) = pair.last_ack.filter(|a| a.version >= added) {
                        g.machine
                            .acked_via_host(&pair.id, ack.sent_at, ack.heard_at);
                    }
                }
            }
            &Quiet::Following { .. } if stale => {}
            &Quiet::Following { leader, term } => {
                let pair = &self.pairs[leader as usize];
                if let Some(heard) = pair.last_heard
                    && !g.machine.heard_leader_via_host(&pair.id, term, heard)
                {
                    self.follower_leaves(slot);
                }
            }
        }
    }

    /// After anything happened to a group: collect its output, end its quiet if it no
    /// longer holds, count leaders, and set its timer.
    pub(super) fn after(&mut self, slot: u32, now: Duration) {
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        let ready = g.machine.ready();
        if let Some(state) = ready.hard_state {
            self.hard_states.push((g.id().to_owned(), state));
        }
        for msg in ready.messages {
            let Some(&p) = self.pair_index.get(&msg.to) else {
                continue;
            };
            self.pairs[p as usize].outbox.push(Item::Group {
                group: msg.cluster,
                term: msg.term,
                body: msg.body,
            });
        }
        let id = g.id();
        self.events
            .extend(ready.events.into_iter().map(|e| (id.to_owned(), e)));
        let leads = g.machine.role() == Role::Leader;
        if leads != g.leading {
            g.leading = leads;
            if leads {
                self.stats.leading += 1;
            } else {
                self.stats.leading -= 1;
            }
        }
        match g.quiet {
            Quiet::Leading { term, .. } if !leads || g.machine.term() != term => {
                self.end_quiet(slot, now);
            }
            Quiet::Following { leader, term }
                if !g.machine.follows(&self.pairs[leader as usize].id, term) =>
            {
                self.follower_leaves(slot);
            }
            _ => {}
        }
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        if matches!(g.quiet, Quiet::Active) {
            let due = g.machine.next_deadline();
            self.timers.schedule(slot, &mut g.timer, due);
        }
    }

    /// A leader group after its heartbeat tick: quiet, if every voter whose host answers
    /// the pair's heartbeats follows it, and they are a majority.
    pub(super) fn maybe_go_quiet(&mut self, slot: u32, _now: Duration) {
        let g = self.groups[slot as usize].as_ref().expect("a live slot");
        if g.machine.role() != Role::Leader
            || !matches!(g.quiet, Quiet::Active)
            || !self.quiet_allowed()
        {
            return;
        }
        let towards: Vec<u16> = g
            .voters
            .iter()
            .copied()
            .filter(|p| self.pairs[*p as usize].current)
            .collect();
        // Set operations wait for the pair's next heartbeat, and are sent again with each
        // until acknowledged: a pair with a full queue takes no more (the group goes on
        // heartbeating by itself meanwhile, and tries again next round).
        let full = towards
            .iter()
            .any(|p| self.pairs[*p as usize].ops.len() >= MAX_PENDING_OPS);
        let ids = towards.iter().map(|p| self.pairs[*p as usize].id.as_str());
        if full || !g.machine.can_go_quiet(ids) {
            return;
        }
        let (term, group) = (g.machine.term(), g.id().to_owned());
        let mut added = Vec::with_capacity(towards.len());
        for p in towards {
            let pair = &mut self.pairs[p as usize];
            let version = pair.push_op(|version| Item::Add {
                version,
                group: group.clone(),
                term,
            });
            pair.quiet_to.insert(slot);
            added.push((p, version));
        }
        let g = self.group_mut(slot);
        g.quiet = Quiet::Leading {
            term,
            towards: added,
        };
        self.stats.quiet += 1;
        self.quiet_leading += 1;
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        self.timers.cancel(&mut g.timer);
    }

    /// Ends a group's quiet (the caller touched it first): as leader, it leaves every pair's
    /// set; as follower, it is reported to the leader's host. Its timers run again.
    pub(super) fn end_quiet(&mut self, slot: u32, now: Duration) {
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        match std::mem::replace(&mut g.quiet, Quiet::Active) {
            Quiet::Active => return,
            Quiet::Leading { towards, .. } => {
                self.quiet_leading -= 1;
                for (p, _) in towards {
                    let pair = &mut self.pairs[p as usize];
                    if pair.quiet_to.remove(&slot) {
                        let group = g.id().to_owned();
                        pair.push_op(|version| Item::Remove { version, group });
                    }
                }
            }
            Quiet::Following { leader, .. } => {
                let pair = &mut self.pairs[leader as usize];
                pair.quiet_from.remove(&slot);
                pair.exceptions.insert(g.id().to_owned());
            }
        }
        self.stats.quiet -= 1;
        let due = g.machine.next_deadline();
        self.timers.schedule(slot, &mut g.timer, due);
        let _ = now;
    }

    /// A quiet follower that no longer follows: reported as an exception.
    pub(super) fn follower_leaves(&mut self, slot: u32) {
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        if let Quiet::Following { leader, .. } = g.quiet {
            g.quiet = Quiet::Active;
            let pair = &mut self.pairs[leader as usize];
            pair.quiet_from.remove(&slot);
            pair.exceptions.insert(g.id().to_owned());
            self.stats.quiet -= 1;
            let due = g.machine.next_deadline();
            self.timers.schedule(slot, &mut g.timer, due);
        }
    }

    /// Gives up every group this host follows quietly through pair `p`: each is brought up
    /// to date with the last heartbeat that counted and runs its own timer again.
    /// Acks then ask the leader's host to start its set afresh.
    pub(super) fn drop_quiet_from(&mut self, p: u16, _now: Duration) {
        let slots: Vec<u32> = self.pairs[p as usize].quiet_from.drain().collect();
        let heard = self.pairs[p as usize].last_heard;
        let leader = self.pairs[p as usize].id.clone();
        for slot in slots {
            let g = self.group_mut(slot);
            if let Quiet::Following { term, .. } = g.quiet {
                if let Some(heard) = heard {
                    g.machine.heard_leader_via_host(&leader, term, heard);
                }
                g.quiet = Quiet::Active;
                self.stats.quiet -= 1;
                let g = self.groups[slot as usize].as_mut().expect("a live slot");
                let due = g.machine.next_deadline();
                self.timers.schedule(slot, &mut g.timer, due);
            }
        }
        let pair = &mut self.pairs[p as usize];
        pair.exceptions.clear();
        pair.dropped = true;
    }

    /// Ends the quiet of every group this host leads quietly towards pair `p`.
    pub(super) fn drop_quiet_to(&mut self, p: u16, now: Duration) {
        let slots: Vec<u32> = self.pairs[p as usize].quiet_to.iter().copied().collect();
        for slot in slots {
            self.touch(slot);
            self.end_quiet(slot, now);
            self.after(slot, now);
        }
    }
}
