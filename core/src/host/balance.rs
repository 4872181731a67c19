//! Leader placement: every host leads about its fair share of groups (one over the number of
//! voters of each group it votes in), and a group with a preferred leader goes back to it
//! whenever it answers. A host more than one group above its share hands groups over to
//! hosts at least one group below theirs, never taking either past its share, so placement
//! settles (within a group or so of every share, where the voter sets allow) and does not
//! oscillate. Both move leadership by handover (TimeoutNow): about one round trip
//! per group, with no gap in fencing (the term grows by one).

use std::time::Duration;

use super::{Host, Preferred, Quiet};
use crate::machine::Role;

impl Host {
    /// This host's fair share of leaderships, in thousandths of a group.
    pub(super) fn share_milli(&self) -> u32 {
        self.share_milli_total.min(u64::from(u32::MAX)) as u32
    }

    /// Runs about once per election timeout.
    pub(super) fn balance(&mut self, now: Duration) {
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
        if led * 1000 <= share + 1000 {
            return; // at most one group above its share
        }
        // Hosts below their share, with what they lead, as they told us.
        let mut under: Vec<(u16, u64, u64)> = (0..self.pairs.len())
            .filter(|p| self.pairs[*p].current && self.pairs[*p].share_milli > 0)
            .map(|p| {
                let pair = &self.pairs[p];
                (p as u16, u64::from(pair.led), u64::from(pair.share_milli))
            })
            .filter(|(_, led, share)| (led + 1) * 1000 <= *share)
            .collect();
        if under.is_empty() {
            return;
        }
        // Half the excess per round (about one election timeout): a few rounds settle it
        // without a burst of handovers that would all land on the same host.
        let budget = ((led * 1000).saturating_sub(share) / 1000).div_ceil(2);
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
                .filter(|(p, led, share)| g.voters.contains(p) && (*led + 1) * 1000 <= *share)
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
