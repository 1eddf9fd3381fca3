//! The attempts in flight: reusable slots, one future each, polled only when woken.
//!
//! What `FuturesUnordered` of boxed futures cost per attempt, and this set does not: a box for
//! the future, a reference-counted task node for its waker, and moving the future into both.
//! Here a slot's storage and waker are made once and reused by every attempt that runs in it,
//! and the future is built in place, so at a steady rate of checks an attempt allocates nothing
//! of the scheduler's own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures::Stream;
use futures::task::AtomicWaker;

/// A set of futures, each with a tag returned beside its output; a `Stream` of finished ones.
pub(super) struct Attempts<T, F> {
    slots: Vec<Slot<T, F>>,
    /// Indices of empty slots.
    free: Vec<usize>,
    /// Slots that were woken (or just filled) and await a poll, from `next` on.
    woken: Vec<usize>,
    next: usize,
    shared: Arc<Shared>,
    len: usize,
}

/// Names one future of the set, to cancel it; stale once it has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket {
    index: usize,
    use_count: u64,
}

struct Slot<T, F> {
    tag: Option<T>,
    /// Futures this slot has held, so that a ticket of an earlier one matches no later one.
    use_count: u64,
    future: Pin<Box<Option<F>>>,
    wake: Arc<SlotWaker>,
    waker: Waker,
}

/// What wakers, which may run on any thread, share with the set.
struct Shared {
    woken: Mutex<Vec<usize>>,
    /// The task that polls the set.
    owner: AtomicWaker,
}

struct SlotWaker {
    index: usize,
    /// Already in a woken list: a slot woken many times before its poll is polled once.
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.shared
                .woken
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(self.index);
            self.shared.owner.wake();
        }
    }
}

impl<T, F: Future> Attempts<T, F> {
    pub(super) fn new() -> Self {
        Attempts {
            slots: Vec::new(),
            free: Vec::new(),
            woken: Vec::new(),
            next: 0,
            shared: Arc::new(Shared {
                woken: Mutex::new(Vec::new()),
                owner: AtomicWaker::new(),
            }),
            len: 0,
        }
    }

    /// Futures in the set.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `future`; it is first polled by the next poll of the set.
    pub(super) fn push(&mut self, tag: T, future: F) -> Ticket {
        let index = self.free.pop().unwrap_or_else(|| {
            let wake = Arc::new(SlotWaker {
                index: self.slots.len(),
                queued: AtomicBool::new(false),
                shared: Arc::clone(&self.shared),
            });
            self.slots.push(Slot {
                tag: None,
                use_count: 0,
                future: Box::pin(None),
                waker: Waker::from(Arc::clone(&wake)),
                wake,
            });
            self.slots.len() - 1
        });
        let slot = &mut self.slots[index];
        slot.tag = Some(tag);
        slot.use_count += 1;
        slot.future.set(Some(future));
        self.len += 1;
        // A wake of the slot's previous future may still be queued; then that one polls it.
        if !slot.wake.queued.swap(true, Ordering::AcqRel) {
            self.woken.push(index);
        }
        Ticket {
            index,
            use_count: slot.use_count,
        }
    }

    /// Whether the future of `ticket` has not finished (nor been cancelled) yet.
    pub(super) fn is_live(&self, ticket: Ticket) -> bool {
        let slot = &self.slots[ticket.index];
        slot.use_count == ticket.use_count && slot.future.is_some()
    }

    /// Drops the future of `ticket` if it has not finished yet, and returns its tag.
    pub(super) fn cancel(&mut self, ticket: Ticket) -> Option<T> {
        if !self.is_live(ticket) {
            return None;
        }
        let slot = &mut self.slots[ticket.index];
        slot.future.set(None);
        self.free.push(ticket.index);
        self.len -= 1;
        slot.tag.take()
    }

    /// The next slot to poll, taking in the wakers' list when the own one is worked through.
    fn next_woken(&mut self) -> Option<usize> {
        if self.next == self.woken.len() {
            self.woken.clear();
            self.next = 0;
            let mut shared = self
                .shared
                .woken
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut *shared, &mut self.woken);
        }
        let index = *self.woken.get(self.next)?;
        self.next += 1;
        Some(index)
    }
}

impl<T: Unpin, F: Future> Stream for Attempts<T, F> {
    type Item = (T, F::Output);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.shared.owner.register(cx.waker());
        // A future that wakes itself at once (as tokio's resources do when the task has used up
        // its budget) would keep this loop going forever: after as many polls as there are
        // futures, give the rest of the task a turn.
        let mut budget = this.len;
        while let Some(index) = this.next_woken() {
            let slot = &mut this.slots[index];
            // Cleared before the poll, so that a wake during it queues the slot again.
            slot.wake.queued.store(false, Ordering::Release);
            let Some(future) = slot.future.as_mut().as_pin_mut() else {
                continue;
            };
            if let Poll::Ready(output) = future.poll(&mut Context::from_waker(&slot.waker)) {
                slot.future.set(None);
                let tag = slot.tag.take().expect("a filled slot has a tag");
                this.free.push(index);
                this.len -= 1;
                return Poll::Ready(Some((tag, output)));
            }
            budget = budget.saturating_sub(1);
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if this.len == 0 {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{FutureExt, StreamExt};

    /// Every future's output comes out once with its tag, slots are reused, and a future is
    /// polled again only after it was woken.
    #[tokio::test(start_paused = true)]
    async fn outputs_come_out_with_their_tags_and_slots_are_reused() {
        let mut set = Attempts::new();
        for round in 0..3u64 {
            for k in 0..4u64 {
                set.push(
                    (round, k),
                    Box::pin(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(10 * (4 - k))).await;
                        k * 10
                    }) as Pin<Box<dyn Future<Output = u64> + Send>>,
                );
            }
            assert_eq!(set.len(), 4);
            let mut got = Vec::new();
            while let Some(((r, k), out)) = set.next().await {
                assert_eq!((r, out), (round, k * 10));
                got.push(k);
            }
            // Shortest sleep first.
            assert_eq!(got, [3, 2, 1, 0]);
            assert!(set.is_empty());
            assert_eq!(set.slots.len(), 4, "slots are reused, not added");
        }
    }

    /// A cancelled future is dropped and reports nothing; a ticket of a finished future, even
    /// one whose slot was reused, cancels nothing.
    #[tokio::test]
    async fn cancel_drops_only_the_future_of_its_ticket() {
        let mut set = Attempts::new();
        let first = set.push(1, futures::future::ready(10).left_future());
        assert_eq!(set.next().await, Some((1, 10)));
        assert!(!set.is_live(first));
        assert_eq!(set.cancel(first), None, "finished already");
        let second = set.push(2, futures::future::pending().right_future());
        assert_eq!(
            set.cancel(first),
            None,
            "a ticket of the slot's earlier future"
        );
        assert!(futures::poll!(set.next()).is_pending());
        assert!(set.is_live(second));
        assert_eq!(set.cancel(second), Some(2));
        assert_eq!(set.cancel(second), None);
        assert!(set.is_empty());
        assert_eq!(set.next().await, None);
    }

    /// A future that always wakes itself does not keep the set's poll from returning.
    #[tokio::test]
    async fn a_self_waking_future_does_not_starve_the_task() {
        let mut set = Attempts::new();
        set.push(
            (),
            futures::future::poll_fn(|cx| {
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            }),
        );
        let polled = futures::poll!(set.next());
        assert!(polled.is_pending());
        assert_eq!(set.len(), 1);
    }
}
