//! The timer: a task that sleeps until the next connection is due, refreshes it, and plans again.
//!
//! It owns its `JoinHandle` and a command channel. It never polls every connection on an interval: the plan is a
//! set ordered by due time (wall-clock milliseconds), and the task sleeps until the first entry — or at most
//! [`RefreshPolicy::wake_check`](super::RefreshPolicy::wake_check), to notice a suspend or a clock change.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{RefreshError, RefreshOutcome, Refresher, Trigger};
use crate::store::{ConnectionId, ConnectionMeta, ConnectionStatus};

/// A wall-clock jump larger than this (relative to the monotonic clock) means a suspend or a clock change.
const CLOCK_JUMP: Duration = Duration::from_secs(2);

enum Command {
    /// (Re)plan a connection: after a connect, a reconnect or a change the engine did not make.
    Schedule(ConnectionId),
    /// Refresh now, answer when done.
    RefreshNow(ConnectionId, oneshot::Sender<Result<RefreshOutcome, RefreshError>>),
    /// Stop planning a connection (it was disconnected).
    Forget(ConnectionId),
    /// Finish the refreshes in flight and end.
    Stop,
}

/// The background refresh component. Dropping it without [`stop`](Self::stop) aborts the task.
#[derive(Debug)]
pub struct RefreshEngine {
    refresher: Arc<Refresher>,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
    stats: Arc<Counters>,
}

/// What the engine has done since it started (for diagnostics and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Times the engine's task woke up (a due time, a command, a finished refresh, or the wake check).
    pub wakeups: u64,
    /// Refreshes the engine started.
    pub refreshes: u64,
    /// Connections currently planned.
    pub planned: u64,
}

#[derive(Debug, Default)]
struct Counters {
    wakeups: AtomicU64,
    refreshes: AtomicU64,
    planned: AtomicU64,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Schedule(id) => write!(f, "Schedule({id})"),
            Self::RefreshNow(id, _) => write!(f, "RefreshNow({id})"),
            Self::Forget(id) => write!(f, "Forget({id})"),
            Self::Stop => f.write_str("Stop"),
        }
    }
}

impl RefreshEngine {
    /// Starts the engine on the current tokio runtime. Every connection already due — and every connection left
    /// `refreshing` by a process that died — is refreshed right away.
    pub fn start(refresher: Arc<Refresher>) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(Counters::default());
        let task = tokio::spawn(run(refresher.clone(), receiver, stats.clone()));
        Self {
            refresher,
            commands,
            task: Some(task),
            stats,
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            wakeups: self.stats.wakeups.load(Ordering::Relaxed),
            refreshes: self.stats.refreshes.load(Ordering::Relaxed),
            planned: self.stats.planned.load(Ordering::Relaxed),
        }
    }

    /// The shared refresher (for on-demand tokens, disconnects and events).
    pub fn refresher(&self) -> &Arc<Refresher> {
        &self.refresher
    }

    /// Plans `id` again (call after connecting or reconnecting it).
    pub fn schedule(&self, id: ConnectionId) {
        let _ = self.commands.send(Command::Schedule(id));
    }

    /// Stops planning `id`.
    pub fn forget(&self, id: ConnectionId) {
        let _ = self.commands.send(Command::Forget(id));
    }

    /// Refreshes `id` now through the engine (sharing its single-flight) and waits for the outcome.
    pub async fn refresh_now(&self, id: ConnectionId) -> Result<RefreshOutcome, RefreshError> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::RefreshNow(id, reply)).is_err() {
            return self.refresher.refresh(id, Trigger::User).await;
        }
        match answer.await {
            Ok(result) => result,
            // The engine stopped meanwhile: do it directly.
            Err(_) => self.refresher.refresh(id, Trigger::User).await,
        }
    }

    /// Stops the engine, letting refreshes in flight finish for at most `limit` (then they are aborted; their
    /// in-flight markers make the next start retry them).
    pub async fn stop(mut self, limit: Duration) {
        let _ = self.commands.send(Command::Stop);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!(
                    limit_ms = limit.as_millis() as u64,
                    "refresh engine did not stop in time; aborting"
                );
                abort.abort();
            }
        }
    }
}

impl Drop for RefreshEngine {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The plan: due times (wall-clock ms) in order, and each connection's entry.
#[derive(Debug, Default)]
struct Plan {
    order: BTreeSet<(u64, ConnectionId)>,
    due: HashMap<ConnectionId, (u64, Trigger)>,
}

impl Plan {
    fn set(&mut self, id: ConnectionId, at: u64, trigger: Trigger) {
        self.remove(id);
        self.order.insert((at, id));
        self.due.insert(id, (at, trigger));
    }

    fn remove(&mut self, id: ConnectionId) {
        if let Some((at, _)) = self.due.remove(&id) {
            self.order.remove(&(at, id));
        }
    }

    fn first(&self) -> Option<u64> {
        self.order.first().map(|(at, _)| *at)
    }

    fn pop_due(&mut self, now: u64) -> Option<(ConnectionId, Trigger)> {
        let &(at, id) = self.order.first()?;
        if at > now {
            return None;
        }
        self.order.remove(&(at, id));
        self.due.remove(&id).map(|(_, trigger)| (id, trigger))
    }
}

fn plan_one(refresher: &Refresher, plan: &mut Plan, id: ConnectionId) {
    match refresher.vault().get_meta(id) {
        Ok(meta) => plan_meta(refresher, plan, id, &meta),
        Err(error) => {
            // Gone or unreadable: nothing to plan. A damaged record is reported by list/verify.
            tracing::debug!(connection = %id, %error, "not planning");
            plan.remove(id);
        }
    }
}

fn plan_meta(refresher: &Refresher, plan: &mut Plan, id: ConnectionId, meta: &ConnectionMeta) {
    match refresher.due_at_ms(id, meta) {
        // Only a process that died mid-refresh leaves `refreshing` on disk: this engine's own refreshes always
        // end in another status before they are planned again.
        Some(at) if meta.status == ConnectionStatus::Refreshing => {
            tracing::warn!(connection = %id, provider = %meta.provider, "a refresh was interrupted; retrying it once");
            plan.set(id, at, Trigger::Resume);
        }
        Some(at) => plan.set(id, at, Trigger::Timer),
        None => plan.remove(id),
    }
}

async fn run(refresher: Arc<Refresher>, mut commands: mpsc::UnboundedReceiver<Command>, stats: Arc<Counters>) {
    let mut plan = Plan::default();
    match refresher.vault().list() {
        Ok(entries) => {
            for (id, meta) in entries {
                if let Ok(meta) = meta {
                    plan_meta(&refresher, &mut plan, id, &meta);
                }
            }
        }
        Err(error) => tracing::error!(%error, "cannot list connections; the refresh engine plans nothing"),
    }
    tracing::info!(planned = plan.due.len(), "refresh engine started");

    let mut running: JoinSet<(ConnectionId, Result<RefreshOutcome, RefreshError>)> = JoinSet::new();
    // Which connection each task refreshes, so a task that panics still frees its connection.
    let mut tasks: HashMap<tokio::task::Id, ConnectionId> = HashMap::new();
    let mut in_flight: HashSet<ConnectionId> = HashSet::new();
    let mut waiting: HashMap<ConnectionId, Vec<oneshot::Sender<Result<RefreshOutcome, RefreshError>>>> = HashMap::new();
    let mut stopping = false;
    loop {
        stats.wakeups.fetch_add(1, Ordering::Relaxed);
        let now = refresher.now_ms();
        if !stopping {
            while let Some((id, trigger)) = plan.pop_due(now) {
                if in_flight.insert(id) {
                    stats.refreshes.fetch_add(1, Ordering::Relaxed);
                    let refresher = refresher.clone();
                    let task = running.spawn(async move { (id, refresher.refresh(id, trigger).await) });
                    tasks.insert(task.id(), id);
                }
            }
        }
        stats.planned.store(plan.due.len() as u64, Ordering::Relaxed);
        if stopping && running.is_empty() {
            break;
        }
        // IMPORTANT: sleep until the first due time, but never longer than `wake_check`: tokio's clock is
        // monotonic and stops during suspend, while due times are wall-clock. Comparing both clocks on wake-up
        // tells a suspend or clock change apart from an ordinary wake.
        let sleep = plan
            .first()
            .map_or(refresher.policy().wake_check, |at| {
                Duration::from_millis(at.saturating_sub(now))
            })
            .min(refresher.policy().wake_check);
        let (slept_at, wall_at) = (Instant::now(), now);
        tokio::select! {
            command = commands.recv(), if !stopping => match command {
                Some(Command::Schedule(id)) => plan_one(&refresher, &mut plan, id),
                Some(Command::Forget(id)) => plan.remove(id),
                Some(Command::RefreshNow(id, reply)) => {
                    plan.remove(id);
                    waiting.entry(id).or_default().push(reply);
                    if in_flight.insert(id) {
                        let refresher = refresher.clone();
                        let task = running.spawn(async move { (id, refresher.refresh(id, Trigger::User).await) });
                        tasks.insert(task.id(), id);
                    }
                }
                Some(Command::Stop) | None => {
                    stopping = true;
                    tracing::info!(in_flight = in_flight.len(), "refresh engine stopping");
                }
            },
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let (id, result) = match done {
                    Ok((task, (id, result))) => {
                        tasks.remove(&task);
                        (id, result)
                    }
                    Err(error) => {
                        let Some(id) = tasks.remove(&error.id()) else { continue };
                        tracing::error!(connection = %id, "a refresh task panicked; the connection will be planned again");
                        let reason = "the refresh stopped unexpectedly".to_owned();
                        (id, Err(RefreshError::Failed { provider: String::new(), account: String::new(), reason }))
                    }
                };
                {
                    in_flight.remove(&id);
                    if let Err(error) = &result {
                        tracing::debug!(connection = %id, %error, "refresh did not succeed");
                    }
                    if let Some(replies) = waiting.remove(&id) {
                        for reply in replies {
                            let _ = reply.send(result.clone());
                        }
                    }
                    if !stopping {
                        plan_one(&refresher, &mut plan, id);
                    }
                }
            },
            () = tokio::time::sleep(sleep) => {
                let mono = slept_at.elapsed().as_millis() as i128;
                let wall = i128::from(refresher.now_ms()) - i128::from(wall_at);
                if (wall - mono).unsigned_abs() > CLOCK_JUMP.as_millis() {
                    tracing::info!(jump_ms = (wall - mono) as i64, "the wall clock jumped (suspend or clock change); re-planning");
                    let ids: Vec<_> = plan.due.keys().copied().collect();
                    for id in ids {
                        plan_one(&refresher, &mut plan, id);
                    }
                }
            }
        }
    }
    tracing::info!("refresh engine stopped");
}
