//! The engine: the one way to change a connection, and the timer that keeps connections fresh.
//!
//! [`RefreshEngine`] wraps the refresher. Without its timer ([`RefreshEngine::new`], as a one-shot CLI command
//! uses it) every call runs directly; once [`RefreshEngine::start`]ed, a task sleeps until the next connection is
//! due, refreshes it and plans again. The task owns its `JoinHandle` and a command channel. It never polls every
//! connection on an interval: the plan is a set ordered by due time (wall-clock milliseconds), and the task sleeps
//! until the first entry — or at most [`RefreshPolicy::wake_check`](super::RefreshPolicy::wake_check), to notice a
//! suspend or a clock change.
//!
//! **Invariant:** the plan follows the refresher's events. Whoever changes a connection — the timer, "Refresh
//! now", an on-demand token for the CLI socket, a connect, a disconnect — the change is an [`EngineEvent`], and the
//! task re-plans that connection from it. A plan made before the change cannot fire a second refresh.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{
    DisconnectReport, EngineEvent, IfRevocationFails, RefreshError, RefreshOutcome, RefreshPolicy, Refresher, Trigger,
};
use crate::clock::Clock;
use crate::http::SharedHttp;
use crate::provider::catalog::Catalog;
use crate::secret::SecretString;
use crate::store::{ConnectionId, ConnectionMeta, ConnectionStatus, Vault};

/// A wall-clock jump larger than this (relative to the monotonic clock) means a suspend or a clock change.
const CLOCK_JUMP: Duration = Duration::from_secs(2);

enum Command {
    /// Refresh now, answer when done.
    RefreshNow(ConnectionId, oneshot::Sender<Result<RefreshOutcome, RefreshError>>),
    /// Pause automatic refreshing until this wall-clock time (ms), or resume it (`None`).
    Pause(Option<u64>),
    /// Plan every connection from the vault again now (the system woke from sleep).
    Replan,
    /// Finish the refreshes in flight and end.
    Stop,
}

/// What the engine works with.
#[derive(Debug)]
pub struct EngineParts {
    /// The open vault.
    pub vault: Arc<Vault>,
    /// The profile's providers (replace it later with [`RefreshEngine::set_catalog`]).
    pub catalog: Catalog,
    /// HTTP to the providers.
    pub http: SharedHttp,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// The timing rules.
    pub policy: RefreshPolicy,
}

/// The refresh engine. Dropping it without [`stop`](Self::stop) aborts its timer task.
#[derive(Debug)]
pub struct RefreshEngine {
    refresher: Arc<Refresher>,
    commands: mpsc::UnboundedSender<Command>,
    timer: Mutex<Timer>,
    stats: Arc<Counters>,
    /// Until when (wall-clock ms) automatic refreshing is paused; 0: it is not. Written by the task only.
    paused_until: Arc<AtomicU64>,
}

/// Whether the timer runs.
#[derive(Debug)]
enum Timer {
    /// Not started: calls run directly. Holds the command channel's receiver for [`RefreshEngine::start`].
    Idle(mpsc::UnboundedReceiver<Command>),
    /// The task runs.
    Running(JoinHandle<()>),
    /// Stopped (or never to be started again): calls run directly.
    Stopped,
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
            Self::RefreshNow(id, _) => write!(f, "RefreshNow({id})"),
            Self::Pause(until) => write!(f, "Pause({until:?})"),
            Self::Replan => f.write_str("Replan"),
            Self::Stop => f.write_str("Stop"),
        }
    }
}

impl RefreshEngine {
    /// An engine over `parts` whose timer does not run yet: every call runs directly until [`start`](Self::start).
    pub fn new(parts: EngineParts) -> Self {
        let EngineParts {
            vault,
            catalog,
            http,
            clock,
            policy,
        } = parts;
        Self::with_refresher(Arc::new(Refresher::new(vault, catalog, http, clock, policy)))
    }

    /// An engine over a refresher the crate's tests built, its timer running.
    #[cfg(test)]
    pub(crate) fn started(refresher: Arc<Refresher>) -> Self {
        let engine = Self::with_refresher(refresher);
        engine.start();
        engine
    }

    pub(crate) fn with_refresher(refresher: Arc<Refresher>) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        Self {
            refresher,
            commands,
            timer: Mutex::new(Timer::Idle(receiver)),
            stats: Arc::new(Counters::default()),
            paused_until: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts the timer on the current tokio runtime (once; later calls do nothing). Every connection already
    /// due — and every connection left `refreshing` by a process that died — is refreshed right away. Subscribe
    /// before starting to hear about those refreshes too.
    pub fn start(&self) {
        let mut timer = self.timer();
        if let Timer::Idle(_) = &*timer {
            let Timer::Idle(receiver) = std::mem::replace(&mut *timer, Timer::Stopped) else {
                unreachable!("matched just above")
            };
            // IMPORTANT: subscribed here, before the task exists, so that no change made from now on escapes
            // the plan; the task lists every connection first and then follows the events.
            let events = self.refresher.subscribe();
            let task = tokio::spawn(run(
                self.refresher.clone(),
                receiver,
                events,
                self.stats.clone(),
                self.paused_until.clone(),
            ));
            *timer = Timer::Running(task);
        }
    }

    fn timer(&self) -> std::sync::MutexGuard<'_, Timer> {
        self.timer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn running(&self) -> bool {
        matches!(&*self.timer(), Timer::Running(task) if !task.is_finished())
    }

    /// Counters since start.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            wakeups: self.stats.wakeups.load(Ordering::Relaxed),
            refreshes: self.stats.refreshes.load(Ordering::Relaxed),
            planned: self.stats.planned.load(Ordering::Relaxed),
        }
    }

    /// Pauses automatic refreshing for `length` (the timer's refreshes and revocation retries; a refresh the
    /// person or a script asks for still runs), or resumes it now (`None`). Returns when the pause ends (Unix
    /// seconds), and announces it as [`EngineEvent::Paused`]. A pause lasts until it runs out, a resume, or the
    /// end of this process: it is not stored.
    ///
    /// # Errors
    /// [`PauseError::NotRunning`] when the timer does not run in this process (there is nothing to pause).
    pub fn pause(&self, length: Option<Duration>) -> Result<Option<u64>, PauseError> {
        if !self.running() {
            return Err(PauseError::NotRunning);
        }
        let until = length.map(|length| {
            let until = self.refresher.now_ms().saturating_add(length.as_millis() as u64);
            // Whole seconds, so what is shown is what happens.
            until.div_ceil(1000) * 1000
        });
        self.commands
            .send(Command::Pause(until))
            .map_err(|_| PauseError::NotRunning)?;
        Ok(until.map(|ms| ms / 1000))
    }

    /// Until when (Unix seconds) automatic refreshing is paused, if it is.
    pub fn paused_until(&self) -> Option<u64> {
        match self.paused_until.load(Ordering::Acquire) {
            0 => None,
            ms => Some(ms / 1000),
        }
    }

    /// Plans every connection again from what is stored, now: the system woke from sleep, and tokens that expired
    /// meanwhile are refreshed within moments instead of at the next wake check. Does nothing without the timer.
    pub fn replan(&self) {
        if self.running() {
            let _ = self.commands.send(Command::Replan);
        }
    }

    /// Receives every [`EngineEvent`] from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.refresher.subscribe()
    }

    /// The vault the engine works on.
    pub fn vault(&self) -> &Arc<Vault> {
        self.refresher.vault()
    }

    /// The providers the engine refreshes with.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.refresher.catalog()
    }

    /// Replaces the provider catalog (after the person changed providers).
    pub fn set_catalog(&self, catalog: Catalog) {
        self.refresher.set_catalog(catalog);
    }

    /// The timing rules.
    pub fn policy(&self) -> &RefreshPolicy {
        self.refresher.policy()
    }

    /// A valid access token for `id`, refreshed first when it expires within the on-demand margin.
    pub async fn access_token(&self, id: ConnectionId) -> Result<SecretString, RefreshError> {
        self.refresher.access_token(id).await
    }

    /// [`Self::access_token`] with the key the token is bound to (DPoP, RFC 9449), when it is: requests with it
    /// need a proof from that key.
    pub async fn usable_token(
        &self,
        id: ConnectionId,
    ) -> Result<(SecretString, Option<crate::dpop::DpopKey>), RefreshError> {
        self.refresher.usable_token(id).await
    }

    /// Refreshes `id` now, even when its token is still fresh (waiting for a refresh of it already in flight),
    /// and returns the outcome.
    pub async fn refresh_now(&self, id: ConnectionId) -> Result<RefreshOutcome, RefreshError> {
        if self.running() {
            let (reply, answer) = oneshot::channel();
            if self.commands.send(Command::RefreshNow(id, reply)).is_ok()
                && let Ok(result) = answer.await
            {
                return result;
            }
            // The engine stopped meanwhile: do it directly.
        }
        self.refresher.refresh(id, Trigger::User).await
    }

    /// Refreshes each of `ids` now, as [`refresh_now`](Self::refresh_now) does, and returns their outcomes in the
    /// same order. With the timer running, every request is handed to it at once, and it runs them within its
    /// limit of concurrent refreshes; without it, one after the other.
    pub async fn refresh_each(&self, ids: &[ConnectionId]) -> Vec<Result<RefreshOutcome, RefreshError>> {
        let mut answers = Vec::with_capacity(ids.len());
        if self.running() {
            for &id in ids {
                let (reply, answer) = oneshot::channel();
                let sent = self.commands.send(Command::RefreshNow(id, reply)).is_ok();
                answers.push((id, sent.then_some(answer)));
            }
        } else {
            answers.extend(ids.iter().map(|&id| (id, None)));
        }
        let mut out = Vec::with_capacity(ids.len());
        for (id, answer) in answers {
            let answered = match answer {
                Some(answer) => answer.await.ok(),
                None => None,
            };
            // Not handed over, or the engine stopped meanwhile: do it directly.
            out.push(match answered {
                Some(result) => result,
                None => self.refresher.refresh(id, Trigger::User).await,
            });
        }
        out
    }

    /// Tells the engine that an API refused `id`'s access token right after a refresh: an attention event, once
    /// per incident (until a refresh succeeds).
    ///
    /// # Errors
    /// [`RefreshError::NotFound`], or the connection's record cannot be read.
    pub fn token_refused(&self, id: ConnectionId, host: &str) -> Result<(), RefreshError> {
        self.refresher.token_refused(id, host)
    }

    /// Revokes `id`'s tokens at the provider and deletes every record of it — or, when the provider cannot be
    /// reached and `if_fails` says so, keeps only what revoking needs and tries again later (the timer plans it
    /// from the event). Disconnecting an account whose revocation is pending tries again now, or deletes it.
    pub async fn disconnect(
        &self,
        id: ConnectionId,
        if_fails: IfRevocationFails,
    ) -> Result<DisconnectReport, RefreshError> {
        self.refresher.disconnect(id, if_fails).await
    }

    /// Tells the engine (and every listener) that `id` was just stored by a connect or reconnect, and returns
    /// its metadata: the timer plans it from there.
    pub fn connected(&self, id: ConnectionId) -> Result<ConnectionMeta, RefreshError> {
        self.refresher.announce(id)
    }

    /// Stops the timer, letting refreshes in flight finish for at most `limit` (then they are aborted; their
    /// in-flight markers make the next start retry them). Calls made afterwards run directly.
    pub async fn stop(&self, limit: Duration) {
        let task = match std::mem::replace(&mut *self.timer(), Timer::Stopped) {
            Timer::Running(task) => task,
            Timer::Idle(_) | Timer::Stopped => return,
        };
        let _ = self.commands.send(Command::Stop);
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

/// Why [`RefreshEngine::pause`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PauseError {
    /// The engine's timer does not run in this process (a one-shot command): there is nothing to pause.
    #[error("automatic refreshing does not run in this process, so it cannot be paused")]
    NotRunning,
}

impl Drop for RefreshEngine {
    fn drop(&mut self) {
        if let Timer::Running(task) = &*self.timer() {
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
    match refresher.next_due(id, meta) {
        // Only a process that died mid-refresh leaves `refreshing` on disk: this engine's own refreshes always
        // end in another status before they are planned again.
        Some((at, _)) if meta.status == ConnectionStatus::Refreshing => {
            tracing::warn!(connection = %id, provider = %meta.provider, "a refresh was interrupted; retrying it once");
            plan.set(id, at, Trigger::Resume);
        }
        // Same uncertainty after a restore from a backup: a refused refresh token means `interrupted`.
        Some((at, _)) if meta.status == ConnectionStatus::CheckNeeded => {
            tracing::info!(connection = %id, provider = %meta.provider, "restored from a backup; checking it");
            plan.set(id, at, Trigger::Resume);
        }
        Some((at, trigger)) => plan.set(id, at, trigger),
        None => plan.remove(id),
    }
}

/// Plans every connection from the vault (at start, and after missing events).
fn plan_all(refresher: &Refresher, plan: &mut Plan) {
    match refresher.vault().list() {
        Ok(entries) => {
            for (id, meta) in entries {
                if let Ok(meta) = meta {
                    plan_meta(refresher, plan, id, &meta);
                }
            }
        }
        Err(error) => tracing::error!(%error, "cannot list connections; the refresh engine plans nothing"),
    }
}

/// A new plan from the vault, without the connections being refreshed now (they are planned when they end).
fn replanned(refresher: &Refresher, in_flight: &HashSet<ConnectionId>) -> Plan {
    let mut plan = Plan::default();
    plan_all(refresher, &mut plan);
    for id in in_flight {
        plan.remove(*id);
    }
    plan
}

async fn run(
    refresher: Arc<Refresher>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut events: broadcast::Receiver<EngineEvent>,
    stats: Arc<Counters>,
    paused_until: Arc<AtomicU64>,
) {
    let mut plan = Plan::default();
    plan_all(&refresher, &mut plan);
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
        let paused = match paused_until.load(Ordering::Acquire) {
            0 => None,
            until if until <= now => {
                paused_until.store(0, Ordering::Release);
                tracing::info!("the pause ran out; refreshing automatically again");
                refresher.emit(EngineEvent::Paused { until: None });
                None
            }
            until => Some(until),
        };
        if !stopping && paused.is_none() {
            while let Some((id, trigger)) = plan.pop_due(now) {
                if in_flight.insert(id) {
                    stats.refreshes.fetch_add(1, Ordering::Relaxed);
                    let refresher = refresher.clone();
                    let task = running.spawn(async move {
                        let result = if trigger == Trigger::Revoke {
                            // Its outcome is in the vault and the events; nobody waits for it here.
                            refresher
                                .retry_revocation(id)
                                .await
                                .map(|_| RefreshOutcome::StillFresh { expires_at: None })
                        } else {
                            refresher.refresh(id, trigger).await
                        };
                        (id, result)
                    });
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
        // While paused, nothing is due before the pause ends.
        let sleep = paused
            .or_else(|| plan.first())
            .map_or(refresher.policy().wake_check, |at| {
                Duration::from_millis(at.saturating_sub(now))
            })
            .min(refresher.policy().wake_check);
        let (slept_at, wall_at) = (Instant::now(), now);
        tokio::select! {
            event = events.recv(), if !stopping => match event {
                // A refresh of this engine's own: it is planned again when it ends.
                Ok(EngineEvent::Status(change)) if in_flight.contains(&change.id) => {}
                // Someone is refreshing it right now (an on-demand token): its outcome will be announced.
                Ok(EngineEvent::Status(change)) if change.meta.status == ConnectionStatus::Refreshing => {}
                // Changed elsewhere (refreshed on demand or by "Refresh now" directly, connected, reconnected):
                // plan from the state just written.
                Ok(EngineEvent::Status(change)) => plan_meta(&refresher, &mut plan, change.id, &change.meta),
                Ok(EngineEvent::Removed(id)) => plan.remove(id),
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    // IMPORTANT: events were dropped (a burst beyond the channel's capacity); the vault has the
                    // truth, so plan everything from it again.
                    tracing::warn!(missed, "the refresh engine missed events; re-planning every connection");
                    plan = replanned(&refresher, &in_flight);
                }
                // The refresher lives as long as this task holds it: cannot happen.
                Err(RecvError::Closed) => {}
            },
            command = commands.recv(), if !stopping => match command {
                Some(Command::RefreshNow(id, reply)) => {
                    plan.remove(id);
                    waiting.entry(id).or_default().push(reply);
                    if in_flight.insert(id) {
                        let refresher = refresher.clone();
                        let task = running.spawn(async move { (id, refresher.refresh(id, Trigger::User).await) });
                        tasks.insert(task.id(), id);
                    }
                }
                Some(Command::Pause(until)) => {
                    paused_until.store(until.unwrap_or(0), Ordering::Release);
                    match until {
                        Some(until) => tracing::info!(until_ms = until, "automatic refreshing paused"),
                        None => tracing::info!("automatic refreshing resumed"),
                    }
                    refresher.emit(EngineEvent::Paused { until: until.map(|ms| ms / 1000) });
                }
                Some(Command::Replan) => {
                    tracing::info!("re-planning every connection (the system woke up)");
                    plan = replanned(&refresher, &in_flight);
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
                        let failed = match refresher.vault().get_meta(id) {
                            Ok(meta) => RefreshError::Failed { provider: meta.provider, account: meta.account, reason },
                            Err(error) => error.into(),
                        };
                        (id, Err(failed))
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
