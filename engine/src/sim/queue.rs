//! The event queue: a binary heap keyed by `(time, seq)`.
//!
//! `seq` is a counter owned by this queue (one per simulation, never global) and bumped on
//! every push, so events scheduled for the same time pop in the order they were pushed (FIFO).
//! This is the only tie rule in the simulator.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::time::SimTime;

/// A min-queue of events ordered by `(time, insertion order)`.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(SimTime, u64, usize)>>,
    payloads: Vec<Option<E>>,
    free_slots: Vec<usize>,
    next_seq: u64,
    now: SimTime,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            payloads: Vec::new(),
            free_slots: Vec::new(),
            next_seq: 0,
            now: SimTime::ZERO,
        }
    }

    /// Schedules `event` at `time`. Scheduling in the past is a bug.
    pub fn push(&mut self, time: SimTime, event: E) {
        assert!(time >= self.now, "event scheduled in the past: {time:?} < {:?}", self.now);
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.payloads[slot] = Some(event);
                slot
            }
            None => {
                self.payloads.push(Some(event));
                self.payloads.len() - 1
            }
        };
        self.heap.push(Reverse((time, self.next_seq, slot)));
        self.next_seq += 1;
    }

    /// Removes and returns the earliest event; among equal times, the first pushed.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse((time, _seq, slot)) = self.heap.pop()?;
        let event = self.payloads[slot].take().expect("queued slot holds a payload");
        self.free_slots.push(slot);
        self.now = time;
        Some((time, event))
    }

    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse((time, _, _))| *time)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Number of events pushed so far (the next `seq`).
    pub fn pushed(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_pop_in_insertion_order() {
        let mut queue = EventQueue::new();
        queue.push(SimTime(10), "a");
        queue.push(SimTime(5), "first");
        queue.push(SimTime(10), "b");
        queue.push(SimTime(10), "c");
        queue.push(SimTime(7), "second");
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(
            order,
            vec![
                (SimTime(5), "first"),
                (SimTime(7), "second"),
                (SimTime(10), "a"),
                (SimTime(10), "b"),
                (SimTime(10), "c"),
            ]
        );
    }

    #[test]
    fn ties_stay_fifo_when_pushed_between_pops() {
        let mut queue = EventQueue::new();
        queue.push(SimTime(1), 1);
        queue.push(SimTime(3), 2);
        assert_eq!(queue.pop(), Some((SimTime(1), 1)));
        queue.push(SimTime(3), 3);
        queue.push(SimTime(3), 4);
        assert_eq!(queue.pop(), Some((SimTime(3), 2)));
        assert_eq!(queue.pop(), Some((SimTime(3), 3)));
        assert_eq!(queue.pop(), Some((SimTime(3), 4)));
        assert!(queue.pop().is_none());
    }

    #[test]
    fn payload_slots_are_reused() {
        let mut queue = EventQueue::new();
        for round in 0..100u64 {
            queue.push(SimTime(round), round);
            assert_eq!(queue.pop(), Some((SimTime(round), round)));
        }
        assert_eq!(queue.payloads.len(), 1);
        assert_eq!(queue.pushed(), 100);
    }
}
