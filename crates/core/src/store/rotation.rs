//! Master-key rotation: re-seal every record under a new key so that a crash at any point loses nothing.
//!
//! The steps, each durable (flushed) before the next begins:
//!
//! 1. **Plan**: generate the new key, record `rotation = old ‖ new` in `meta`.
//! 2. **Store**: put the new key in the keystore and read it back.
//! 3. **Re-seal**: rewrite each record sealed with the old key under the new one (one compare-and-swap and one
//!    flush per record). Records already under the new key are skipped, so re-running finishes the job.
//! 4. **Switch**: in one `meta` batch, `key_id = new`, drop `rotation`, set `retired_key = old`.
//! 5. **Retire**: delete the old key from the keystore, then drop `retired_key`.
//!
//! Records carry their key id in the envelope header, and while `rotation` is recorded the vault holds both keys,
//! so every record stays readable throughout. [`Vault::open`] finishes an interrupted rotation: after step 1 alone
//! (the new key never reached the keystore) it abandons it; after steps 2–3 it re-seals the rest and switches;
//! after step 4 it retires the old key.

use std::sync::Arc;

use crate::envelope;
use crate::keys::{KeyError, KeyStore, store_verified};
use crate::secret::{KeyId, MasterKey};

use super::{
    ConnectionId, META_KEY_ID, META_RETIRED, META_ROTATION, MetaState, Source, StoreError, TREE_CONNECTIONS, Vault,
    split_token_key,
};

/// A point in a rotation, reported to the fail-point hook of [`Vault::rotate_key_with_failpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationStep {
    /// The rotation is recorded in `meta`; the new key is not yet in the keystore.
    Planned,
    /// The new key is in the keystore (read back).
    KeyStored,
    /// One more record was re-sealed under the new key.
    RecordResealed,
    /// The store's current key is now the new key.
    Switched,
    /// The old key was deleted from the keystore; only the `retired_key` marker remains.
    OldKeyDeleted,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The key that was replaced.
    pub old: KeyId,
    /// The key now in use.
    pub new: KeyId,
    /// Records re-sealed by this run.
    pub resealed: usize,
    /// Records that could not be opened with the old key (already damaged) and were left as they were; `verify`
    /// lists them.
    pub damaged: usize,
}

type Hook<'a> = &'a mut dyn FnMut(RotationStep) -> bool;

impl Vault {
    /// Replaces the master key: a new key is created and stored in the keyring, every record is re-sealed under
    /// it, and the old key is deleted from the keyring last. Safe to interrupt at any point: every record stays
    /// readable, and the next `open` (or `rotate_key`) completes the job. Holds the write lock throughout.
    ///
    /// # Errors
    /// [`StoreError::RotationNeedsKeyring`] in headless mode; keyring and database failures (the store then
    /// remains readable with the keys it had).
    pub fn rotate_key(&self) -> Result<RotationReport, StoreError> {
        self.rotate_key_with_failpoint(&mut |_| false)
    }

    /// [`Vault::rotate_key`] with a test hook called after each step: returning `true` stops the rotation there
    /// with [`StoreError::Interrupted`], as a crash would (every step is already flushed).
    #[doc(hidden)]
    pub fn rotate_key_with_failpoint(
        &self,
        fail_at: &mut dyn FnMut(RotationStep) -> bool,
    ) -> Result<RotationReport, StoreError> {
        let Source::Keyring(store) = &self.source else {
            return Err(StoreError::RotationNeedsKeyring);
        };
        let store = Arc::clone(store);
        let _w = self.write_lock();
        let state = super::read_meta(&self.meta)?;
        if let Some((old, new)) = state.rotation
            && let Some(report) = self.resume(&*store, old, new, fail_at)?
        {
            return Ok(report);
        }
        if let Some(old) = state.retired {
            self.retire(&*store, old, fail_at)?;
        }

        let old = self.key_id();
        let new_key = MasterKey::generate().map_err(crate::crypto::CryptoError::from)?;
        let new = new_key.id();
        let mut plan = Vec::with_capacity(16);
        plan.extend_from_slice(old.as_bytes());
        plan.extend_from_slice(new.as_bytes());
        self.meta
            .insert(META_ROTATION, plan)
            .map_err(StoreError::db("recording the rotation"))?;
        self.flush()?;
        tracing::info!(%old, %new, "key rotation planned");
        step(fail_at, RotationStep::Planned)?;

        if let Err(e) = store_verified(&*store, &new_key) {
            // Nothing is sealed with the new key yet: abandon the plan so the store is as before.
            self.abandon(&*store, new);
            return Err(e.into());
        }
        self.keys_write().other = Some(new_key);
        step(fail_at, RotationStep::KeyStored)?;
        self.complete(&*store, old, new, fail_at)
    }

    /// Completes an interrupted rotation found at open. The caller is `open`, which has not yet shared the vault.
    pub(super) fn finish_interrupted_rotation(&self, state: MetaState) -> Result<(), StoreError> {
        let Source::Keyring(store) = &self.source else {
            // `open` refuses headless mode while a rotation is pending; a leftover `retired_key` can only be
            // deleted from the keyring, so it waits for the next keyring-mode open.
            return Ok(());
        };
        let store = Arc::clone(store);
        let _w = self.write_lock();
        let mut never = |_| false;
        if let Some((old, new)) = state.rotation {
            self.resume(&*store, old, new, &mut never)?;
        }
        if let Some(old) = state.retired {
            // A leftover old key harms nothing (no record needs it any more): do not refuse to open over it.
            if let Err(e) = self.retire(&*store, old, &mut never) {
                tracing::warn!(error = %e, %old, "could not delete the retired key yet; will retry at the next open");
            }
        }
        Ok(())
    }

    /// Resumes a recorded rotation: `Some(report)` once done, `None` if it was abandoned because the new key never
    /// reached the keystore (then the store is exactly as before the rotation began).
    fn resume(
        &self,
        store: &dyn KeyStore,
        old: KeyId,
        new: KeyId,
        fail_at: Hook<'_>,
    ) -> Result<Option<RotationReport>, StoreError> {
        let have_new = self.keys_read().find(new).is_some();
        if !have_new {
            match store.load(new)? {
                Some(key) => self.keys_write().other = Some(key),
                None => {
                    if self.any_record_sealed_with(new)? {
                        return Err(KeyError::KeyMissing {
                            profile: self.profile.clone(),
                            key_id: new,
                        }
                        .into());
                    }
                    tracing::warn!(%old, %new, "abandoning a rotation whose new key never reached the keystore");
                    self.abandon(store, new);
                    return Ok(None);
                }
            }
        }
        tracing::info!(%old, %new, "resuming an interrupted key rotation");
        self.complete(store, old, new, fail_at).map(Some)
    }

    /// Steps 3–5. Both keys are in `self.keys`.
    fn complete(
        &self,
        store: &dyn KeyStore,
        old: KeyId,
        new: KeyId,
        fail_at: Hook<'_>,
    ) -> Result<RotationReport, StoreError> {
        let mut report = RotationReport {
            old,
            new,
            resealed: 0,
            damaged: 0,
        };
        for (name, tree) in self.sealed_trees()? {
            let record_keys: Vec<_> = tree
                .iter()
                .keys()
                .collect::<Result<_, _>>()
                .map_err(StoreError::db("listing records"))?;
            for k in record_keys {
                let Some(sealed) = tree.get(&k).map_err(StoreError::db("reading a record"))? else {
                    continue;
                };
                match envelope::peek_header(&sealed) {
                    Ok(h) if h.key_id == new => continue,
                    Ok(h) if h.key_id == old => {}
                    _ => {
                        report.damaged += 1;
                        continue;
                    }
                }
                let (id, field) = if name == TREE_CONNECTIONS {
                    (ConnectionId::from_slice(&k), super::FIELD_META)
                } else {
                    match split_token_key(&k) {
                        Some((id, field)) => (Some(id), field),
                        None => (None, ""),
                    }
                };
                let Some(id) = id else {
                    report.damaged += 1;
                    continue;
                };
                let resealed = {
                    let keys = self.keys_read();
                    let old_key = keys.find(old).expect("the old key is held during rotation");
                    let new_key = keys.find(new).expect("the new key is held during rotation");
                    let loc = self.location(&name, &id, field);
                    match envelope::open(old_key, &loc, &sealed) {
                        Ok(plain) => envelope::seal(new_key, &loc, plain.dangerously_expose())?,
                        Err(_) => {
                            report.damaged += 1;
                            continue;
                        }
                    }
                };
                // IMPORTANT: compare-and-swap, so that the rewrite is exactly "this envelope → its re-sealed form";
                // writers are excluded by the write lock, so a mismatch would mean the tree changed underneath us.
                tree.compare_and_swap(&k, Some(&sealed), Some(resealed))
                    .map_err(StoreError::db("re-sealing a record"))?
                    .map_err(|_| StoreError::MetaDamaged {
                        reason: "a record changed during key rotation".into(),
                    })?;
                self.flush()?;
                report.resealed += 1;
                step(fail_at, RotationStep::RecordResealed)?;
            }
        }
        if report.damaged > 0 {
            tracing::warn!(
                count = report.damaged,
                "records that could not be opened were left as they were"
            );
        }

        let mut batch = sled::Batch::default();
        batch.insert(META_KEY_ID, new.as_bytes());
        batch.remove(META_ROTATION);
        batch.insert(META_RETIRED, old.as_bytes());
        self.meta
            .apply_batch(batch)
            .map_err(StoreError::db("switching to the new key"))?;
        self.flush()?;
        {
            let mut keys = self.keys_write();
            let previous = keys.other.take().expect("the new key is held during rotation");
            keys.other = Some(std::mem::replace(&mut keys.current, previous));
        }
        // Every record changed: a backup under the new key follows.
        self.bump_generation()?;
        tracing::info!(%old, %new, resealed = report.resealed, "switched to the new key");
        step(fail_at, RotationStep::Switched)?;

        self.retire(store, old, fail_at)?;
        Ok(report)
    }

    /// Step 5: delete the old key from the keystore, then forget it.
    fn retire(&self, store: &dyn KeyStore, old: KeyId, fail_at: Hook<'_>) -> Result<(), StoreError> {
        store.delete(old)?;
        // Backups MACed with the deleted key can no longer be verified: one under the new key replaces them.
        self.backup_now()?;
        super::backup::remove_made_with(self.backups_dir(), old);
        step(fail_at, RotationStep::OldKeyDeleted)?;
        self.meta
            .remove(META_RETIRED)
            .map_err(StoreError::db("finishing the rotation"))?;
        self.flush()?;
        let mut keys = self.keys_write();
        if keys.other.as_ref().is_some_and(|k| k.id() == old) {
            keys.other = None;
        }
        tracing::info!(%old, "old key deleted from the keystore");
        Ok(())
    }

    /// Drops a rotation plan whose new key holds no record. Best effort: on failure the plan is simply met again
    /// (and abandoned again) at the next open.
    fn abandon(&self, store: &dyn KeyStore, new: KeyId) {
        if let Err(e) = self
            .meta
            .remove(META_ROTATION)
            .map_err(StoreError::db("abandoning the rotation"))
            .and_then(|_| self.flush())
        {
            tracing::warn!(error = %e, "could not abandon the rotation plan");
        }
        if let Err(e) = store.delete(new) {
            tracing::warn!(error = %e, %new, "could not delete the unused new key");
        }
        let mut keys = self.keys_write();
        if keys.other.as_ref().is_some_and(|k| k.id() == new) {
            keys.other = None;
        }
    }

    fn any_record_sealed_with(&self, id: KeyId) -> Result<bool, StoreError> {
        for (_, tree) in self.sealed_trees()? {
            for item in tree.iter().values() {
                let v = item.map_err(StoreError::db("reading a record"))?;
                if envelope::peek_header(&v).is_ok_and(|h| h.key_id == id) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

fn step(fail_at: Hook<'_>, at: RotationStep) -> Result<(), StoreError> {
    if fail_at(at) {
        Err(StoreError::Interrupted(at))
    } else {
        Ok(())
    }
}
