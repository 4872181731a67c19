//! The groups' timers: one heap for every active group, so a quiet group costs nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// A group's place in the heap: when it is due, and a generation that outdates earlier
/// entries (they stay in the heap and are skipped when they come up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Slot {
    generation: u32,
    due: Option<Duration>,
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Duration, u32, u32)>>,
}

impl Timers {
    /// Makes `group` due at `due` (or never), unless it already is.
    pub fn schedule(&mut self, group: u32, slot: &mut Slot, due: Option<Duration>) {
        if slot.due == due {
            return;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.due = due;
        if let Some(at) = due {
            self.heap.push(Reverse((at, group, slot.generation)));
        }
    }

    pub fn cancel(&mut self, slot: &mut Slot) {
        slot.generation = slot.generation.wrapping_add(1);
        slot.due = None;
    }

    /// The earliest entry (possibly outdated: waking early is harmless).
    pub fn next(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next entry due at `now`: group, generation, time. Check it with [`Slot::claim`].
    pub fn pop_due(&mut self, now: Duration) -> Option<(u32, u32, Duration)> {
        let &Reverse((at, group, generation)) = self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        Some((group, generation, at))
    }
}

impl Slot {
    /// Whether a popped entry is this slot's current one; if so, it is no longer scheduled.
    pub fn claim(&mut self, generation: u32, at: Duration) -> bool {
        let current = self.generation == generation && self.due == Some(at);
        if current {
            self.due = None;
        }
        current
    }
}
