//! How many job requests and jobs may be under way: `concurrent` over the
//! whole agent, `limit` and `request_concurrency` per `[[runners]]` entry.
//!
//! A request occupies one of the `concurrent` slots while it is in flight
//! (as a gitlab-runner worker does), and the slot passes to the job it
//! brings. `limit` counts the entry's jobs AND its requests in flight, so
//! two requests answered at once cannot take the entry over its limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The limits a request is checked against; read from the configuration
/// at the moment of the request, so a reload applies to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `concurrent`: slots over every entry (at least 1).
    pub concurrent: u32,
    /// `limit`: jobs of this entry at once; 0 means no limit of its own.
    pub limit: u32,
    /// `request_concurrency`: requests of this entry in flight (at least 1).
    pub request_concurrency: u32,
}

/// Why a request may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every `concurrent` slot is busy.
    Concurrent,
    /// The entry runs `limit` jobs already.
    Limit,
    /// The entry has `request_concurrency` requests in flight.
    RequestConcurrency,
}

#[derive(Debug, Default)]
struct Load {
    busy: u32,
    entries: HashMap<String, EntryLoad>,
}

#[derive(Debug, Default, Clone, Copy)]
struct EntryLoad {
    requests: u32,
    jobs: u32,
}

/// The agent's slots. Cheap to clone; every clone shares the counts.
#[derive(Debug, Clone, Default)]
pub struct Capacity {
    load: Arc<Mutex<Load>>,
}

impl Capacity {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a slot for a job request of the entry `token`.
    pub fn try_request(&self, token: &str, limits: Limits) -> Result<RequestSlot, Refusal> {
        let mut load = self.lock();
        if load.busy >= limits.concurrent.max(1) {
            return Err(Refusal::Concurrent);
        }
        let entry = load.entries.get(token).copied().unwrap_or_default();
        if limits.limit > 0 && entry.jobs + entry.requests >= limits.limit {
            return Err(Refusal::Limit);
        }
        if entry.requests >= limits.request_concurrency.max(1) {
            return Err(Refusal::RequestConcurrency);
        }
        load.busy += 1;
        load.entries.entry(token.to_owned()).or_default().requests += 1;
        Ok(RequestSlot {
            capacity: self.clone(),
            token: token.to_owned(),
            held: true,
        })
    }

    /// Jobs running now, over every entry.
    pub fn running_jobs(&self) -> u32 {
        self.lock().entries.values().map(|e| e.jobs).sum()
    }

    /// Jobs of the entry `token` running now.
    pub fn running_jobs_of(&self, token: &str) -> u32 {
        self.lock().entries.get(token).map_or(0, |e| e.jobs)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Load> {
        self.load.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, token: &str, job: bool) {
        let mut load = self.lock();
        load.busy = load.busy.saturating_sub(1);
        if let Some(entry) = load.entries.get_mut(token) {
            if job {
                entry.jobs = entry.jobs.saturating_sub(1);
            } else {
                entry.requests = entry.requests.saturating_sub(1);
            }
            if entry.jobs == 0 && entry.requests == 0 {
                load.entries.remove(token);
            }
        }
    }
}

/// A request in flight; frees its slot when dropped.
#[derive(Debug)]
pub struct RequestSlot {
    capacity: Capacity,
    token: String,
    held: bool,
}

impl RequestSlot {
    /// The request brought a job: the slot now belongs to it.
    pub fn into_job(mut self) -> JobSlot {
        self.held = false;
        let mut load = self.capacity.lock();
        let entry = load.entries.entry(self.token.clone()).or_default();
        entry.requests = entry.requests.saturating_sub(1);
        entry.jobs += 1;
        drop(load);
        JobSlot {
            capacity: self.capacity.clone(),
            token: std::mem::take(&mut self.token),
        }
    }
}

impl Drop for RequestSlot {
    fn drop(&mut self) {
        if self.held {
            self.capacity.release(&self.token, false);
        }
    }
}

/// A running job's slot; freed when dropped.
#[derive(Debug)]
pub struct JobSlot {
    capacity: Capacity,
    token: String,
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        self.capacity.release(&self.token, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrent: u32, limit: u32, request_concurrency: u32) -> Limits {
        Limits {
            concurrent,
            limit,
            request_concurrency,
        }
    }

    #[test]
    fn requests_are_bounded_per_entry_and_overall() {
        let cap = Capacity::new();
        let l = limits(2, 0, 1);
        let a = cap.try_request("a", l).unwrap();
        assert_eq!(
            cap.try_request("a", l).unwrap_err(),
            Refusal::RequestConcurrency
        );
        let b = cap.try_request("b", l).unwrap();
        assert_eq!(cap.try_request("c", l).unwrap_err(), Refusal::Concurrent);
        drop(a);
        let _c = cap.try_request("c", l).unwrap();
        drop(b);
        assert_eq!(cap.running_jobs(), 0);
    }

    #[test]
    fn a_job_keeps_the_slot_of_its_request_and_counts_against_the_limit() {
        let cap = Capacity::new();
        let l = limits(4, 2, 2);
        let job = cap.try_request("a", l).unwrap().into_job();
        assert_eq!(cap.running_jobs_of("a"), 1);
        let request = cap.try_request("a", l).unwrap();
        // One job and one request in flight reach the limit of 2.
        assert_eq!(cap.try_request("a", l).unwrap_err(), Refusal::Limit);
        drop(request);
        let second = cap.try_request("a", l).unwrap().into_job();
        assert_eq!(cap.try_request("a", l).unwrap_err(), Refusal::Limit);
        drop(job);
        drop(second);
        assert_eq!(cap.running_jobs(), 0);
        // Every slot is free again.
        let all: Vec<_> = (0..2).map(|_| cap.try_request("a", l).unwrap()).collect();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn a_lower_concurrent_after_a_reload_applies_to_the_next_request() {
        let cap = Capacity::new();
        let _a = cap.try_request("a", limits(3, 0, 1)).unwrap();
        let _b = cap.try_request("b", limits(3, 0, 1)).unwrap();
        assert_eq!(
            cap.try_request("c", limits(2, 0, 1)).unwrap_err(),
            Refusal::Concurrent
        );
    }
}
