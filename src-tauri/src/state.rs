//! What every command can reach: the settings resolved at start-up, the held store once it is open (core's
//! [`Host`]: the operations, the refresh engine and the CLI socket) with the event forwarder, and the one connect
//! flow that may be running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tauri::AppHandle;
use tauri::async_runtime::JoinHandle;
use tokenkeep_core::browser::CommandBrowser;
use tokenkeep_core::host::Host;
use tokenkeep_core::http::{ReqwestHttp, SharedHttp};
use tokenkeep_core::keys::{self, KeyringState};
use tokenkeep_core::ops::{self, LocalOps};
use tokenkeep_core::profile::ProfilePaths;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{PROGRAM_APP, RestoreReport};
use tokio::sync::{OwnedRwLockWriteGuard, RwLock as AsyncRwLock};
use tokio::task::AbortHandle;

use crate::dto::VaultStatus;
use crate::error::{CommandError, ErrorCode};

/// How long refreshes in flight may take to finish when the app quits. Past it they are aborted; their in-flight
/// markers make the next start retry them.
// IMPORTANT: short, because the window is already gone and the user is waiting for the process to end; long
// enough for one token request on a normal network (a refresh that completes saves a rotated refresh token).
const ENGINE_STOP_LIMIT: Duration = Duration::from_secs(5);

/// How often the keyring is looked at while the vault is closed for want of it: a few D-Bus round trips, no
/// secret read and no prompt (`keys::probe_keyring`), so a keyring started or unlocked is noticed within seconds.
const KEYRING_WATCH_EVERY: Duration = Duration::from_secs(2);

/// The log target of this module's events.
// IMPORTANT: not the default `tokenkeep_app::state`: core's log redactor reads `state:` as an OAuth `state`
// parameter and masks the first word of every message logged from a module named `state`.
const LOG: &str = "tokenkeep_app::vault";

/// The app's shared state.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) paths: ProfilePaths,
    /// The master key comes from `TOKENKEEP_MASTER_KEY` rather than the OS keyring.
    pub(crate) headless: bool,
    /// `TOKENKEEP_BROWSER`, when set: the command that opens sign-in pages instead of the desktop's handler.
    pub(crate) browser: Option<CommandBrowser>,
    /// The vault, or why it is not open. Held for writing while it is being opened, so commands wait for the
    /// outcome instead of seeing a half-started state.
    vault: Arc<AsyncRwLock<Slot>>,
    /// Whether a task watches the keyring (the vault is closed because the keyring is missing or locked).
    watching: Arc<AtomicBool>,
    /// The running connect flow, if any (one at a time).
    connect: Mutex<Option<Flow>>,
    /// Where `paste_sign_in_address` hands the pasted address to a flow that waits for one.
    paste: Mutex<Option<tokio::sync::oneshot::Sender<SecretString>>>,
}

#[derive(Debug)]
enum Slot {
    Open(Arc<Ready>),
    Closed(CommandError),
}

/// The held store and what runs on it.
#[derive(Debug)]
pub(crate) struct Ready {
    host: Host,
    forwarder: JoinHandle<()>,
}

impl Ready {
    /// The operations every command calls.
    pub(crate) fn ops(&self) -> &Arc<LocalOps> {
        self.host.ops()
    }
}

/// A connect flow in progress: how to cancel it, and a number telling it apart from the next one.
#[derive(Debug)]
struct Flow {
    generation: u64,
    abort: AbortHandle,
}

/// Clears the connect slot when the flow that claimed it ends, however it ends.
#[derive(Debug)]
pub(crate) struct FlowClaim<'a> {
    state: &'a AppState,
    generation: u64,
}

impl Drop for FlowClaim<'_> {
    fn drop(&mut self) {
        let mut slot = self.state.connect.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|f| f.generation == self.generation) {
            *slot = None;
        }
    }
}

impl AppState {
    pub(crate) fn new(paths: ProfilePaths, headless: bool, browser: Option<CommandBrowser>) -> Self {
        Self {
            paths,
            headless,
            browser,
            vault: Arc::new(AsyncRwLock::new(Slot::Closed(CommandError::internal(
                "the vault was never opened",
            )))),
            watching: Arc::default(),
            connect: Mutex::new(None),
            paste: Mutex::new(None),
        }
    }

    /// Makes the running flow wait for a pasted address; the receiver resolves when one is pasted (or gives
    /// `Err` when the flow is cancelled or another wait replaces this one).
    pub(crate) fn expect_paste(&self) -> tokio::sync::oneshot::Receiver<SecretString> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        *self.paste.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        rx
    }

    /// Hands `address` to the flow waiting for it; `false` when none waits.
    pub(crate) fn paste(&self, address: SecretString) -> bool {
        match self.paste.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(tx) => tx.send(address).is_ok(),
            None => false,
        }
    }

    /// Starts opening the vault in the background. Called once, from the setup hook: the write lock is taken
    /// here, synchronously, so that no command can run before the outcome is known.
    pub(crate) fn open_in_background(&self, app: &AppHandle) -> Result<(), &'static str> {
        let slot = self
            .vault
            .clone()
            .try_write_owned()
            .map_err(|_| "the vault is already being opened")?;
        let opener = self.opener(app);
        // IMPORTANT: not on the main thread: the keyring may take a while (D-Bus, an unlock prompt), and the
        // window must show meanwhile.
        tauri::async_runtime::spawn(async move { opener.open_into(slot).await });
        Ok(())
    }

    /// The open vault, or the error that explains why it is not open.
    pub(crate) async fn ready(&self) -> Result<Arc<Ready>, CommandError> {
        match &*self.vault.read().await {
            Slot::Open(ready) => Ok(ready.clone()),
            Slot::Closed(error) => Err(error.clone()),
        }
    }

    /// The vault's state for the window.
    pub(crate) async fn status(&self) -> VaultStatus {
        status_of(&*self.vault.read().await, self.headless, &self.paths, &self.watching)
    }

    fn opener(&self, app: &AppHandle) -> Opener {
        Opener {
            app: app.clone(),
            vault: self.vault.clone(),
            paths: self.paths.clone(),
            headless: self.headless,
            watching: self.watching.clone(),
        }
    }

    /// Tries to open the vault again if it is not open (e.g. after the keyring was unlocked).
    pub(crate) async fn retry(&self, app: &AppHandle) -> VaultStatus {
        let slot = self.vault.clone().write_owned().await;
        if !matches!(*slot, Slot::Open(_)) {
            tracing::info!(target: LOG, "retrying to open the vault");
            // From scratch: a new key source, and with it a new connection to the keyring.
            self.opener(app).open_into(slot).await;
        } else {
            drop(slot);
        }
        self.status().await
    }

    /// Restores the store from its newest good backup, while the vault is closed (damaged or missing), then opens
    /// it. The slot's lock is held throughout, so nothing opens the store meanwhile.
    pub(crate) async fn restore(&self, app: &AppHandle) -> Result<(VaultStatus, RestoreReport), CommandError> {
        let slot = self.vault.clone().write_owned().await;
        if matches!(*slot, Slot::Open(_)) {
            return Err(CommandError::new(
                ErrorCode::Invalid,
                "the vault is open and working: there is nothing to restore",
            ));
        }
        tracing::info!(target: LOG, "restoring the store from its newest backup");
        let paths = self.paths.clone();
        // The store is left closed, so that the normal start-up below opens it with the engine and the socket.
        let report = tokio::task::spawn_blocking(move || ops::restore_from_backup(&paths, None, PROGRAM_APP))
            .await
            .map_err(|_| CommandError::internal("the restore stopped unexpectedly"))??;
        self.opener(app).open_into(slot).await;
        Ok((self.status().await, report))
    }

    /// Claims the connect slot and runs `flow` as its own task, so that `cancel_connect` can abort it.
    pub(crate) fn start_flow<F>(&self, flow: F) -> Result<(JoinHandle<F::Output>, FlowClaim<'_>), CommandError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut slot = self.connect.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|f| !f.abort.is_finished()) {
            return Err(CommandError::busy());
        }
        let generation = slot.as_ref().map_or(0, |f| f.generation) + 1;
        let task = tauri::async_runtime::spawn(flow);
        *slot = Some(Flow {
            generation,
            abort: task.inner().abort_handle(),
        });
        Ok((
            task,
            FlowClaim {
                state: self,
                generation,
            },
        ))
    }

    /// Aborts the running connect flow; returns whether there was one. Dropping the flow closes its loopback port.
    pub(crate) fn cancel_flow(&self) -> bool {
        self.paste.lock().unwrap_or_else(PoisonError::into_inner).take();
        match self.connect.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(flow) => {
                flow.abort.abort();
                true
            }
            None => false,
        }
    }

    /// At exit: cancels a sign-in, stops forwarding events, closes the CLI socket and lets the refresh engine
    /// finish what is in flight.
    pub(crate) async fn shut_down(&self) {
        self.cancel_flow();
        let Ok(mut slot) = tokio::time::timeout(Duration::from_secs(1), self.vault.write()).await else {
            tracing::warn!(target: LOG, "the vault is still being opened at exit; not waiting for it");
            return;
        };
        let Slot::Open(ready) = std::mem::replace(
            &mut *slot,
            Slot::Closed(CommandError::internal("Tokenkeep is quitting")),
        ) else {
            return;
        };
        ready.forwarder.abort();
        // The socket first (no CLI request starts on a store that is closing; cli.sock and cli.secret are
        // removed), then the engine.
        ready.host.stop(ENGINE_STOP_LIMIT).await;
    }
}

fn status_of(slot: &Slot, headless: bool, paths: &ProfilePaths, watching: &AtomicBool) -> VaultStatus {
    match slot {
        Slot::Open(ready) => VaultStatus {
            ready: true,
            key_id: Some(ready.ops().vault().key_id().to_hex()),
            headless,
            error: None,
            retryable: false,
            watching: false,
            store_exists: true,
            key_notice: ops::key_notice_due(paths, ready.ops().vault().key_id(), ready.ops().vault().is_headless()),
        },
        Slot::Closed(error) => VaultStatus {
            ready: false,
            key_id: None,
            headless,
            error: Some(error.clone()),
            // TOKENKEEP_MASTER_KEY is read once, at start: a Retry cannot change what it holds.
            retryable: !(headless && env_key_problem(error.code)),
            watching: watching.load(Ordering::Acquire),
            store_exists: tokenkeep_core::store::store_exists(paths),
            key_notice: false,
        },
    }
}

/// An error that, headless, comes from `TOKENKEEP_MASTER_KEY` itself.
fn env_key_problem(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::WrongKey | ErrorCode::Invalid | ErrorCode::KeyMissing)
}

/// A vault closed for want of the keyring: the keyring appearing or being unlocked may open it.
fn waits_for_keyring(slot: &Slot) -> bool {
    matches!(slot, Slot::Closed(e) if matches!(e.code, ErrorCode::KeyringUnavailable | ErrorCode::KeyringLocked))
}

/// Opens the vault into its slot, and while it stays closed for want of the keyring, watches the keyring.
#[derive(Debug, Clone)]
struct Opener {
    app: AppHandle,
    vault: Arc<AsyncRwLock<Slot>>,
    paths: ProfilePaths,
    headless: bool,
    watching: Arc<AtomicBool>,
}

impl Opener {
    /// Opens the vault and starts what runs on it, storing the outcome in `slot` (the lock of `self.vault`, which
    /// the caller holds); if it stays closed for want of the keyring, starts watching the keyring.
    async fn open_into(&self, slot: OwnedRwLockWriteGuard<Slot>) {
        self.open_slot(slot).await;
        self.watch_if_waiting().await;
    }

    async fn open_slot(&self, mut slot: OwnedRwLockWriteGuard<Slot>) {
        *slot = match open(&self.app, &self.paths).await {
            Ok(ready) => {
                tracing::info!(target: LOG, key_id = %ready.ops().vault().key_id(), headless = self.headless, "vault open; refresh engine started");
                Slot::Open(Arc::new(ready))
            }
            Err(error) => {
                // The message is core's and holds no secret; the window shows it with what to do.
                tracing::warn!(target: LOG, error_code = ?error.code, error = %error.message, "the vault could not be opened");
                Slot::Closed(error)
            }
        };
    }

    /// The vault is closed for want of the keyring.
    async fn waiting(&self) -> bool {
        waits_for_keyring(&*self.vault.read().await)
    }

    async fn watch_if_waiting(&self) {
        if self.waiting().await && !self.headless && !self.watching.swap(true, Ordering::AcqRel) {
            let watcher = self.clone();
            tauri::async_runtime::spawn(async move { watcher.watch_keyring().await });
        }
    }

    /// Looks at the keyring every [`KEYRING_WATCH_EVERY`] while the vault is closed for want of it. When the
    /// keyring appears or is unlocked, opens the vault (a new connection to the keyring) and tells the window
    /// (`vault-status`). Only a change is acted on, so a keyring that stays locked is not asked again and again
    /// (reading a key from a locked keyring would prompt).
    async fn watch_keyring(self) {
        tracing::info!(target: LOG, "watching for the keyring to start or unlock");
        let mut last = probe().await;
        loop {
            tokio::time::sleep(KEYRING_WATCH_EVERY).await;
            if !self.waiting().await {
                self.watching.store(false, Ordering::Release);
                // A retry may have closed it for the keyring again in between, without starting a watcher.
                if self.waiting().await && !self.watching.swap(true, Ordering::AcqRel) {
                    continue;
                }
                break;
            }
            let now = probe().await;
            let changed = now != last;
            last = now;
            if !changed || now == KeyringState::Unreachable {
                continue;
            }
            let slot = self.vault.clone().write_owned().await;
            if !waits_for_keyring(&slot) {
                continue;
            }
            tracing::info!(target: LOG, keyring = ?now, "the keyring changed; opening the vault again");
            self.open_slot(slot).await;
            let status = status_of(&*self.vault.read().await, self.headless, &self.paths, &self.watching);
            crate::events::emit(&self.app, crate::events::VAULT_STATUS, status);
        }
        tracing::info!(target: LOG, "stopped watching the keyring");
    }
}

async fn probe() -> KeyringState {
    tokio::task::spawn_blocking(keys::probe_keyring)
        .await
        .unwrap_or(KeyringState::Unreachable)
}

async fn open(app: &AppHandle, paths: &ProfilePaths) -> Result<Ready, CommandError> {
    let http: SharedHttp = Arc::new(ReqwestHttp::new().map_err(|error| {
        tracing::error!(target: LOG, %error, "cannot build the HTTP client");
        CommandError::internal("cannot set up HTTPS")
    })?);
    let host = Host::open(paths, PROGRAM_APP, http).await?;
    // IMPORTANT: subscribe before the engine starts, so the window also hears about the refreshes the engine
    // starts at once (connections already due, refreshes a previous run left unfinished).
    let events = host.ops().engine().subscribe();
    let forwarder = tauri::async_runtime::spawn(crate::events::forward(app.clone(), events, host.ops().clone()));
    // The CLI is a convenience: without its socket the app works as before, and `tokenkeep` says the store is in
    // use. (The socket logs where it listens.)
    if let Err(error) = host.start().await {
        tracing::warn!(target: LOG, %error, "the CLI socket could not be opened");
    }
    Ok(Ready { host, forwarder })
}
