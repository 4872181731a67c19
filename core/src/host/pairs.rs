//! What a host does with each other host: the pair's datagrams (sequence and incarnation
//! checks, set operations, heartbeats and acks), and its heartbeat tick.

use std::time::Duration;

use super::pair::HostAck;
use super::wire::{Datagram, Item};
use super::{Host, Quiet};
use crate::auth::AuthError;
use crate::error::Error;
use crate::message::Envelope;

/// How many groups one ack reports as no longer following (keeps an ack within a datagram).
const MAX_EXCEPTIONS_PER_ACK: usize = 32;

impl Host {
    /// A pair whose last counted acknowledgement is older than this (from its heartbeat's
    /// sending) no longer keeps groups quiet: half the lease, so that a group that loses its
    /// majority leaves quiet, and its own timers end its lease, before the lease's end.
    pub(super) fn stale_after(&self) -> Duration {
        self.config.lease_duration() / 2
    }

    /// Whether groups may go quiet with these timeouts: the pairs' silence must be noticed
    /// (within a heartbeat of `stale_after`) before the lease the last ack gave ends.
    pub(super) fn quiet_allowed(&self) -> bool {
        let lease_end = self
            .config
            .lease_duration()
            .saturating_sub(self.config.lease_margin());
        self.stale_after() + 2 * self.config.heartbeat_interval < lease_end
    }

    /// Refuses replays; notices a restart of the other host.
    pub(super) fn check_sequence(
        &mut self,
        p: u16,
        d: &Datagram,
        now: Duration,
    ) -> Result<(), Error> {
        let pair = &self.pairs[p as usize];
        match pair.incarnation {
            Some(inc) if d.incarnation < inc => {
                return Err(Error::Unauthenticated(AuthError::Replayed));
            }
            Some(inc) if d.incarnation > inc => self.peer_restarted(p, now),
            _ => {}
        }
        let pair = &mut self.pairs[p as usize];
        if pair.incarnation != Some(d.incarnation) {
            pair.incarnation = Some(d.incarnation);
            pair.seen = Default::default();
        }
        if !pair.seen.take(d.seq) {
            return Err(Error::Unauthenticated(AuthError::Replayed));
        }
        Ok(())
    }

    /// The other host started again: both sets between us start afresh.
    pub(super) fn peer_restarted(&mut self, p: u16, now: Duration) {
        self.drop_quiet_from(p, now);
        self.drop_quiet_to(p, now);
        let pair = &mut self.pairs[p as usize];
        pair.forget_its_set();
        pair.dropped = false;
        pair.last_heard = None;
        pair.alive_at = None;
        pair.restart_set();
        pair.current = false;
    }

    pub(super) fn apply(&mut self, p: u16, item: Item, now: Duration) {
        match item {
            Item::Reset { version } => {
                if version > self.pairs[p as usize].in_version {
                    self.drop_quiet_from(p, now);
                    let pair = &mut self.pairs[p as usize];
                    pair.in_version = version;
                    pair.dropped = false;
                    pair.last_heard = None;
                    self.apply_waiting_ops(p, now);
                }
            }
            Item::Add { version, .. } | Item::Remove { version, .. } => {
                let pair = &mut self.pairs[p as usize];
                if version == pair.in_version + 1 {
                    self.apply_op(p, item, now);
                    self.apply_waiting_ops(p, now);
                } else {
                    pair.hold_op(version, item);
                }
            }
            Item::Heartbeat {
                round,
                version,
                led,
                share_milli,
            } => {
                let pair = &mut self.pairs[p as usize];
                pair.led = led;
                pair.share_milli = share_milli;
                let matches = !pair.dropped && version == pair.in_version;
                if matches {
                    pair.last_heard = Some(now);
                    pair.alive_at = Some(now);
                }
                let ack = Item::Ack {
                    incarnation: pair.incarnation.unwrap_or(0),
                    round,
                    version: pair.in_version,
                    reset: pair.dropped,
                    // At most MAX_EXCEPTIONS_PER_ACK: the rest go with the next acks, as
                    // the leader's host removes the first ones.
                    exceptions: pair
                        .exceptions
                        .iter()
                        .take(MAX_EXCEPTIONS_PER_ACK)
                        .cloned()
                        .collect(),
                };
                pair.outbox.push(ack);
            }
            Item::Ack {
                incarnation,
                round,
                version,
                reset,
                exceptions,
            } => {
                // An answer to an earlier incarnation of this host: its version counts a set
                // that is gone (taken for ours, it would drop our Reset unapplied).
                if incarnation == self.incarnation {
                    self.on_ack(p, round, version, reset, exceptions, now);
                }
            }
            Item::Group { group, term, body } => {
                let Some(&slot) = self.index.get(&group) else {
                    self.stats.refused_items += 1;
                    return;
                };
                self.touch(slot);
                let msg = Envelope {
                    cluster: group,
                    from: self.pairs[p as usize].id.clone(),
                    to: self.id.clone(),
                    term,
                    body,
                };
                if self.group_mut(slot).machine.step(now, msg).is_err() {
                    self.stats.refused_items += 1;
                }
                self.after(slot, now);
            }
        }
    }

    /// Applies the next operation on the other host's set (its version is `in_version + 1`).
    fn apply_op(&mut self, p: u16, op: Item, now: Duration) {
        match op {
            Item::Add {
                version,
                group,
                term,
            } => {
                self.pairs[p as usize].in_version = version;
                self.follower_add(p, &group, term, now);
            }
            Item::Remove { version, group } => {
                let pair = &mut self.pairs[p as usize];
                pair.in_version = version;
                pair.exceptions.remove(&group);
                if let Some(&slot) = self.index.get(&group)
                    && self.pairs[p as usize].quiet_from.contains(&slot)
                {
                    self.touch(slot);
                    self.follower_leaves(slot);
                    self.pairs[p as usize].exceptions.remove(&group);
                    self.after(slot, now);
                }
            }
            _ => unreachable!("only set operations are held"),
        }
    }

    /// Applies the operations that came ahead of their turn and whose turn has come.
    fn apply_waiting_ops(&mut self, p: u16, now: Duration) {
        while let Some(op) = self.pairs[p as usize].next_held_op() {
            self.apply_op(p, op, now);
        }
    }

    /// The leader's host added `group` (at `term`) to its quiet set towards us.
    pub(super) fn follower_add(&mut self, p: u16, group: &str, term: u64, now: Duration) {
        let leader = self.pairs[p as usize].id.clone();
        let follows = self.index.get(group).copied().filter(|slot| {
            let g = self.group(*slot);
            matches!(g.quiet, Quiet::Active) && g.machine.follows(&leader, term)
        });
        let Some(slot) = follows else {
            self.pairs[p as usize].exceptions.insert(group.to_owned());
            return;
        };
        let g = self.group_mut(slot);
        g.quiet = Quiet::Following { leader: p, term };
        self.stats.quiet += 1;
        let pair = &mut self.pairs[p as usize];
        pair.quiet_from.insert(slot);
        pair.alive_at = Some(pair.alive_at.map_or(now, |a| a.max(now)));
        let g = self.groups[slot as usize].as_mut().expect("a live slot");
        self.timers.cancel(&mut g.timer);
    }

    pub(super) fn on_ack(
        &mut self,
        p: u16,
        round: u64,
        version: u64,
        reset: bool,
        exceptions: Vec<String>,
        now: Duration,
    ) {
        if reset {
            self.drop_quiet_to(p, now);
            self.pairs[p as usize].restart_set();
            self.pairs[p as usize].current = false;
            return;
        }
        // Groups that no longer follow there leave quiet first, with what counted before.
        for group in exceptions {
            if let Some(&slot) = self.index.get(&group)
                && self.pairs[p as usize].quiet_to.contains(&slot)
            {
                self.touch(slot);
                self.end_quiet(slot, now);
                self.after(slot, now);
            }
        }
        let pair = &mut self.pairs[p as usize];
        pair.ops_acked(version);
        let Some((sent_at, sent_version)) = pair.sent_round(round) else {
            return;
        };
        if sent_version != version {
            return; // it did not hold the set this heartbeat stood for
        }
        if pair.last_ack.is_none_or(|a| a.sent_at < sent_at) {
            pair.last_ack = Some(HostAck {
                sent_at,
                heard_at: now,
                version,
            });
        }
    }

    /// The pairs' heartbeats, and what their answers (or silence) mean for quiet groups.
    pub(super) fn tick(&mut self, now: Duration) {
        self.ticks += 1;
        let t = self.config.election_timeout;
        let keep = 2 * t;
        let stale_after = self.stale_after();
        let (led, share) = (self.stats.leading as u32, self.share_milli());
        for p in 0..self.pairs.len() {
            // Leader side: is it still answering?
            // Counted from when the heartbeat was sent: a late ack must not keep groups
            // quiet past the lease it gave them.
            let current = self.pairs[p]
                .last_ack
                .is_some_and(|a| a.sent_at + stale_after >= now);
            let was = std::mem::replace(&mut self.pairs[p].current, current);
            if was && !current {
                self.pair_went_silent(p as u16, now);
            } else if !was && current {
                self.pair_came_back(p as u16, now);
            }
            // Follower side: silent for an election timeout, its set is given up.
            let pair = &self.pairs[p];
            let silent = pair.alive_at.is_none_or(|a| a + t <= now);
            if !pair.quiet_from.is_empty() && silent {
                self.drop_quiet_from(p as u16, now);
            }
            let pair = &mut self.pairs[p];
            let round = pair.next_round(now, keep);
            let ops: Vec<Item> = pair.ops.iter().cloned().collect();
            pair.outbox.extend(ops);
            pair.outbox.push(Item::Heartbeat {
                round,
                version: pair.out_version,
                led,
                share_milli: share,
            });
        }
        if self.ticks.is_multiple_of(10) {
            self.balance(now);
        }
    }

    /// Pair `p` stopped answering: each group quiet towards it stays quiet only if the
    /// pairs still answering make a majority with this host.
    pub(super) fn pair_went_silent(&mut self, p: u16, now: Duration) {
        let slots: Vec<u32> = self.pairs[p as usize].quiet_to.iter().copied().collect();
        for slot in slots {
            let g = self.group(slot);
            let Quiet::Leading { towards, .. } = &g.quiet else {
                continue;
            };
            let answering = towards
                .iter()
                .filter(|(q, _)| self.pairs[*q as usize].current)
                .count();
            let voters = g.voters.len() + 1;
            if answering + 1 < voters / 2 + 1 {
                self.touch(slot);
                self.end_quiet(slot, now);
                self.after(slot, now);
            }
        }
    }

    /// Pair `p` answers again: the groups this host leads that it votes in but that are
    /// not quiet towards it run their own heartbeats until it follows them again.
    pub(super) fn pair_came_back(&mut self, p: u16, now: Duration) {
        let slots: Vec<u32> = self
            .live_slots()
            .filter(|slot| {
                let g = self.group(*slot);
                match &g.quiet {
                    Quiet::Leading { towards, .. } => {
                        g.voters.contains(&p) && !towards.iter().any(|(q, _)| *q == p)
                    }
                    _ => false,
                }
            })
            .collect();
        for slot in slots {
            self.touch(slot);
            self.end_quiet(slot, now);
            self.after(slot, now);
        }
    }
}
