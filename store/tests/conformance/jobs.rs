//! The jobs / outbox queue: dedupe, due claims, leases, concurrent claimers, retry, release,
//! hold, dead jobs and tenant scoping.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::error::Conflict;
use switchboard_core::store::{JobState, NewJob, Store};
use switchboard_core::{BusinessId, IntegrationId, JobId, StoreError};

use crate::support::{at, business, connected};

switchboard_store::on_both_backends!(crate::support::migrated =>
    an_enqueued_job_reads_back_and_a_repeated_dedupe_key_is_refused,
    only_due_jobs_are_claimed_and_each_claim_counts_an_attempt,
    a_running_job_whose_lease_ended_is_claimed_again,
    a_job_whose_last_attempt_was_abandoned_is_dead_not_claimed,
    concurrent_claimers_take_each_job_exactly_once,
    a_retried_job_waits_for_its_run_at_and_keeps_the_error,
    a_released_job_is_claimable_at_once_without_spending_an_attempt,
    held_jobs_wait_until_their_integration_releases_them,
    a_dead_job_can_be_retried_only_by_its_own_business,
    a_business_lists_only_its_own_jobs,
    jobs_of_one_queue_run_one_at_a_time_in_order,
    a_postponed_job_waits_without_spending_an_attempt,
);

const LEASE: Duration = Duration::from_secs(60);

fn job(business: BusinessId, integration: Option<IntegrationId>, secs: i64) -> NewJob {
    NewJob {
        kind: "send".into(),
        business_id: business,
        integration_id: integration,
        payload: serde_json::json!({ "to": "1555", "n": secs }),
        run_at: at(secs),
        dedupe_key: None,
        queue_key: None,
        max_attempts: 5,
    }
}

fn ids(jobs: &[switchboard_core::store::Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

async fn an_enqueued_job_reads_back_and_a_repeated_dedupe_key_is_refused(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let mut new = job(a.id, None, 0);
    new.dedupe_key = Some("reply:m1".into());
    let id = store.enqueue_job(new.clone()).await.unwrap();
    let read = store.job(id).await.unwrap().unwrap();
    assert_eq!(read.kind, "send");
    assert_eq!(read.state, JobState::Pending);
    assert_eq!((read.attempts, read.max_attempts), (0, 5));
    assert_eq!(read.payload, new.payload);
    assert_eq!(read.run_at.timestamp_micros(), at(0).timestamp_micros());
    assert_eq!(read.dedupe_key.as_deref(), Some("reply:m1"));
    let again = store.enqueue_job(new).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(Conflict::DuplicateJob))),
        "{again:?}"
    );
    assert_eq!(store.job(JobId::new()).await.unwrap(), None);
}

async fn only_due_jobs_are_claimed_and_each_claim_counts_an_attempt(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let later = store.enqueue_job(job(a.id, None, 100)).await.unwrap();
    let due = store.enqueue_job(job(a.id, None, 0)).await.unwrap();
    let claimed = store.claim_jobs("w1", 10, LEASE, at(50)).await.unwrap();
    assert_eq!(ids(&claimed), vec![due]);
    assert_eq!(claimed[0].state, JobState::Running);
    assert_eq!(claimed[0].attempts, 1);
    assert!(
        store
            .claim_jobs("w2", 10, LEASE, at(60))
            .await
            .unwrap()
            .is_empty()
    );
    store.complete_job(due).await.unwrap();
    assert_eq!(store.job(due).await.unwrap().unwrap().state, JobState::Done);
    let next = store.claim_jobs("w2", 10, LEASE, at(100)).await.unwrap();
    assert_eq!(ids(&next), vec![later]);
    let missing = store.complete_job(JobId::new()).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

async fn a_running_job_whose_lease_ended_is_claimed_again(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let id = store.enqueue_job(job(a.id, None, 0)).await.unwrap();
    assert_eq!(
        store
            .claim_jobs("crashed", 1, LEASE, at(0))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_jobs("w2", 1, LEASE, at(59))
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_jobs("w2", 1, LEASE, at(61)).await.unwrap();
    assert_eq!(ids(&again), vec![id]);
    assert_eq!(again[0].attempts, 2);
}

async fn a_job_whose_last_attempt_was_abandoned_is_dead_not_claimed(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let mut once = job(a.id, None, 0);
    once.max_attempts = 1;
    let id = store.enqueue_job(once).await.unwrap();
    assert_eq!(
        store
            .claim_jobs("crashed", 1, LEASE, at(0))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_jobs("w2", 1, LEASE, at(61))
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store.job(id).await.unwrap().unwrap();
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 1));
    assert!(dead.last_error.is_some());
}

async fn concurrent_claimers_take_each_job_exactly_once(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let mut all = HashSet::new();
    for n in 0..200 {
        all.insert(store.enqueue_job(job(a.id, None, n % 7)).await.unwrap());
    }
    let claimers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_jobs(&format!("w{w}"), 7, LEASE, at(10)).await;
                    let batch = batch.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.iter().map(|j| j.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(seen, all);
}

async fn a_retried_job_waits_for_its_run_at_and_keeps_the_error(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let id = store.enqueue_job(job(a.id, None, 0)).await.unwrap();
    store.claim_jobs("w", 1, LEASE, at(0)).await.unwrap();
    store.retry_job(id, at(30), "HTTP 503").await.unwrap();
    let read = store.job(id).await.unwrap().unwrap();
    assert_eq!((read.state, read.attempts), (JobState::Pending, 1));
    assert_eq!(read.last_error.as_deref(), Some("HTTP 503"));
    assert!(
        store
            .claim_jobs("w", 1, LEASE, at(29))
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_jobs("w", 1, LEASE, at(30)).await.unwrap();
    assert_eq!(again[0].attempts, 2);
}

async fn a_released_job_is_claimable_at_once_without_spending_an_attempt(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let id = store.enqueue_job(job(a.id, None, 0)).await.unwrap();
    store.claim_jobs("w", 1, LEASE, at(0)).await.unwrap();
    store.release_job(id).await.unwrap();
    let read = store.job(id).await.unwrap().unwrap();
    assert_eq!((read.state, read.attempts), (JobState::Pending, 0));
    let again = store.claim_jobs("w", 1, LEASE, at(1)).await.unwrap();
    assert_eq!(again[0].attempts, 1);
    store.complete_job(id).await.unwrap();
    // Releasing a job that is not running changes nothing.
    store.release_job(id).await.unwrap();
    assert_eq!(store.job(id).await.unwrap().unwrap().state, JobState::Done);
}

async fn held_jobs_wait_until_their_integration_releases_them(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let i = connected(&store, a.id, "whatsapp", "pn-1").await;
    let other = connected(&store, a.id, "telegram", "bot-1").await;
    let held = store.enqueue_job(job(a.id, Some(i.id), 0)).await.unwrap();
    let unrelated = store
        .enqueue_job(job(a.id, Some(other.id), 0))
        .await
        .unwrap();
    store.claim_jobs("w", 10, LEASE, at(0)).await.unwrap();
    store.hold_job(held, "token rejected (190)").await.unwrap();
    store
        .hold_job(unrelated, "token rejected (401)")
        .await
        .unwrap();
    let listed = store.list_jobs(a.id, JobState::Held, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        store
            .claim_jobs("w", 10, LEASE, at(1000))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.release_held_jobs(i.id, at(2000)).await.unwrap(), 1);
    let claimed = store.claim_jobs("w", 10, LEASE, at(2000)).await.unwrap();
    assert_eq!(ids(&claimed), vec![held]);
    assert_eq!(
        claimed[0].last_error.as_deref(),
        Some("token rejected (190)")
    );
    assert_eq!(
        store.job(unrelated).await.unwrap().unwrap().state,
        JobState::Held
    );
}

async fn a_dead_job_can_be_retried_only_by_its_own_business(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    let id = store.enqueue_job(job(a.id, None, 0)).await.unwrap();
    store.claim_jobs("w", 1, LEASE, at(0)).await.unwrap();
    store.kill_job(id, "131047: window closed").await.unwrap();
    let dead = store.list_jobs(a.id, JobState::Dead, 10).await.unwrap();
    assert_eq!(ids(&dead), vec![id]);
    assert_eq!(dead[0].last_error.as_deref(), Some("131047: window closed"));
    assert!(!store.retry_dead_job(b.id, id, at(5)).await.unwrap());
    assert!(store.retry_dead_job(a.id, id, at(5)).await.unwrap());
    assert!(
        !store.retry_dead_job(a.id, id, at(5)).await.unwrap(),
        "no longer dead"
    );
    let read = store.job(id).await.unwrap().unwrap();
    assert_eq!((read.state, read.attempts), (JobState::Pending, 0));
    assert_eq!(
        ids(&store.claim_jobs("w", 1, LEASE, at(5)).await.unwrap()),
        vec![id]
    );
}

async fn a_business_lists_only_its_own_jobs(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let b = business(&store, "B").await;
    let first = store.enqueue_job(job(a.id, None, 0)).await.unwrap();
    let second = store.enqueue_job(job(a.id, None, 1)).await.unwrap();
    store.enqueue_job(job(b.id, None, 0)).await.unwrap();
    let listed = store.list_jobs(a.id, JobState::Pending, 10).await.unwrap();
    assert_eq!(ids(&listed), vec![second, first], "newest first");
    assert_eq!(
        store
            .list_jobs(a.id, JobState::Pending, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_jobs(a.id, JobState::Dead, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let theirs = store.list_jobs(b.id, JobState::Pending, 10).await.unwrap();
    assert!(
        theirs
            .iter()
            .all(|j| j.business_id == b.id && j.id != first)
    );
}

async fn jobs_of_one_queue_run_one_at_a_time_in_order(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let queued = |n: i64| {
        let mut new = job(a.id, None, 0);
        new.queue_key = Some("conversation:1".into());
        new.payload = serde_json::json!({ "n": n });
        new
    };
    let first = store.enqueue_job(queued(1)).await.unwrap();
    let second = store.enqueue_job(queued(2)).await.unwrap();
    let other = store.enqueue_job(job(a.id, None, 0)).await.unwrap();
    // One claim of everything: the second job of the queue waits for the first.
    let claimed = store.claim_jobs("w", 10, LEASE, at(1)).await.unwrap();
    let claimed: HashSet<JobId> = ids(&claimed).into_iter().collect();
    assert_eq!(claimed, HashSet::from([first, other]));
    assert!(
        store
            .claim_jobs("w", 10, LEASE, at(2))
            .await
            .unwrap()
            .is_empty(),
        "still running"
    );
    // A retried first job keeps blocking its queue until it is done.
    store.retry_job(first, at(3), "try later").await.unwrap();
    assert_eq!(
        ids(&store.claim_jobs("w", 10, LEASE, at(2)).await.unwrap()),
        Vec::<JobId>::new()
    );
    assert_eq!(
        ids(&store.claim_jobs("w", 10, LEASE, at(3)).await.unwrap()),
        vec![first]
    );
    store.complete_job(first).await.unwrap();
    assert_eq!(
        ids(&store.claim_jobs("w", 10, LEASE, at(4)).await.unwrap()),
        vec![second]
    );
    assert_eq!(
        store
            .job(second)
            .await
            .unwrap()
            .unwrap()
            .queue_key
            .as_deref(),
        Some("conversation:1")
    );
}

async fn a_postponed_job_waits_without_spending_an_attempt(store: Arc<dyn Store>) {
    let a = business(&store, "A").await;
    let id = store.enqueue_job(job(a.id, None, 0)).await.unwrap();
    store.claim_jobs("w", 1, LEASE, at(0)).await.unwrap();
    store.postpone_job(id, at(10)).await.unwrap();
    let read = store.job(id).await.unwrap().unwrap();
    assert_eq!((read.state, read.attempts), (JobState::Pending, 0));
    assert!(
        store
            .claim_jobs("w", 1, LEASE, at(9))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.claim_jobs("w", 1, LEASE, at(10)).await.unwrap()[0].attempts,
        1
    );
    assert!(matches!(
        store.postpone_job(JobId::new(), at(0)).await,
        Err(StoreError::NotFound)
    ));
}
