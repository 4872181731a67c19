//! Leader placement: every host leads about its fair share of groups (one over the number of
//! voters of each group it votes in), and a group with a preferred leader goes back to it
//! whenever it answers. A host more than one group and 2% above its share hands groups over
//! to hosts as far below theirs, a quarter of its excess per round, so placement settles
//! within about 2% of every share (where the voter sets allow) without oscillating on counts
//! that lag. Both move leadership by handover (TimeoutNow): about one round trip
//! per group, with no gap in fencing (the term grows by one).

use std::time::Duration;

use super::{Host, Preferred, Quiet};
use crate::machine::Role;

impl Host {
    /// This host's fair share of leaderships, in thousandths of a group.
    pub(super) fn share_milli(&self) -> u32 {
        self.share_milli_total.min(u64::from(u32::MAX)) as u32
    }

    /// Runs about once per election timeout, when the host is calm: placement is worth no
    /// extra elections while campaigns wait or many groups heartbeat by themselves.
    pub(super) fn balance(&mut self, now: Duration) {
        let active = self.stats.leading.saturating_sub(self.quiet_leading);
        if !self.waiting.is_empty() || active > MAX_MOVES_PER_ROUND {
            return;
        }
        self.back_to_preferred(now);
        self.spread_evenly(now);
    }

    fn back_to_preferred(&mut self, now: Duration) {
        let slots: Vec<u32> = self.preferring.clone();
        for slot in slots {
            let g = self.group(slot);
            let Preferred::Peer(p) = g.preferred else {
                continue;
            };
            if g.machine.role() != Role::Leader || !self.pairs[p as usize].current {
                continue;
            }
            let to = self.pairs[p as usize].id.clone();
            self.hand_over(slot, &to, now);
        }
    }

    fn spread_evenly(&mut self, now: Duration) {
        let share = self.share_milli_total.max(1);
        let led = self.stats.leading as u64;
        if led * 1000 <= above(share) {
            return; // within a group (and 2%) of its share
        }
        // Hosts below their share, with what they lead, as they told us.
        let mut under: Vec<(u16, u64, u64)> = (0..self.pairs.len())
            .filter(|p| self.pairs[*p].current && self.pairs[*p].share_milli > 0)
            .map(|p| {
                let pair = &self.pairs[p];
                (p as u16, u64::from(pair.led), u64::from(pair.share_milli))
            })
            .filter(|(_, led, share)| led * 1000 < below(*share))
            .collect();
        if under.is_empty() {
            return;
        }
        // Half the excess per round (about one election timeout): a few rounds settle it
        // without a burst of handovers that would all land on the same host.
        // A quarter of the excess per round (about one election timeout): the counts the
        // other hosts report lag by a round trip, and several hosts may give to one.
        let budget = ((led * 1000).saturating_sub(share) / 1000)
            .div_ceil(4)
            .min(MAX_MOVES_PER_ROUND as u64);
        let mut moved = 0;
        let slots: Vec<u32> = self.live_slots().collect();
        for slot in slots {
            if moved >= budget {
                break;
            }
            let g = self.group(slot);
            if g.machine.role() != Role::Leader || g.preferred != Preferred::Anywhere {
                continue;
            }
            let target = under
                .iter_mut()
                .filter(|(p, led, share)| g.voters.contains(p) && *led * 1000 < below(*share))
                .min_by_key(|(_, led, share)| led * 1000 / share.max(&mut 1).to_owned());
            let Some(target) = target else { continue };
            target.1 += 1;
            let to = self.pairs[target.0 as usize].id.clone();
            if self.hand_over(slot, &to, now) {
                moved += 1;
                self.stats.handovers_for_balance += 1;
            }
        }
    }

    /// Hands `slot`'s leadership to `to`; whether it started.
    fn hand_over(&mut self, slot: u32, to: &str, now: Duration) -> bool {
        self.touch(slot);
        if matches!(self.group(slot).quiet, Quiet::Leading { .. }) {
            self.end_quiet(slot, now);
        }
        let ok = self
            .group_mut(slot)
            .machine
            .transfer_leadership(now, Some(to))
            .is_ok();
        self.after(slot, now);
        ok
    }
}

/// The most handovers a host starts per round, for placement.
const MAX_MOVES_PER_ROUND: usize = 250;

/// A host gives groups away above this many thousandths of a group: its share, plus one
/// group and 2%.
fn above(share_milli: u64) -> u64 {
    share_milli + 1000 + share_milli / 50
}

/// A host takes groups below this: its share, less one group and 2%.
fn below(share_milli: u64) -> u64 {
    share_milli.saturating_sub(1000 + share_milli / 50)
}
