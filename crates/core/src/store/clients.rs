//! Client secrets of confidential OAuth clients, sealed in the `clients` tree like tokens.
//!
//! A provider has at most one client secret. Its record id is derived from the provider id
//! (`SHA-256("tokenkeep/v1/client-record" ‖ 0x00 ‖ provider)[..16]`) so it can be found without decrypting
//! anything; the provider id is public (it also names a token tree), so nothing personal is revealed. The key
//! layout is the token trees' (record id ‖ `0x00` ‖ field), so rotation, verification and export treat these
//! records like any other.

use sha2::{Digest as _, Sha256};

use super::{CONNECTION_ID_LEN, ConnectionId, Op, StoreError, TREE_CLIENTS, Vault, token_key};
use crate::provider::ProviderId;
use crate::secret::SecretString;

/// The field a client secret is sealed under.
pub const FIELD_CLIENT_SECRET: &str = "client_secret";

/// The record id of `provider`'s client secret.
pub(super) fn client_record_id(provider: &ProviderId) -> ConnectionId {
    let digest = Sha256::new()
        .chain_update(b"tokenkeep/v1/client-record")
        .chain_update([0u8])
        .chain_update(provider.as_str().as_bytes())
        .finalize();
    let mut id = [0u8; CONNECTION_ID_LEN];
    id.copy_from_slice(&digest[..CONNECTION_ID_LEN]);
    ConnectionId::from_bytes(id)
}

impl Vault {
    /// The clients tree, created if needed: for writers only (readers use `existing_tree`).
    fn clients_tree(&self) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(TREE_CLIENTS)
            .map_err(StoreError::db("opening the clients tree"))
    }

    /// Seals `secret` as `provider`'s client secret, replacing any previous one; flushed before it returns.
    ///
    /// # Errors
    /// A sealing or database failure (then nothing changed).
    pub fn set_client_secret(&self, provider: &ProviderId, secret: &SecretString) -> Result<(), StoreError> {
        let w = self.write_lock();
        let id = client_record_id(provider);
        let sealed = {
            let keys = self.keys_read();
            self.seal(
                &keys.current,
                TREE_CLIENTS,
                id,
                FIELD_CLIENT_SECRET,
                secret.dangerously_expose().as_bytes(),
            )?
        };
        self.commit(
            w,
            &[(
                self.clients_tree()?,
                vec![Op::Put(token_key(id, FIELD_CLIENT_SECRET), sealed)],
            )],
        )
    }

    /// `provider`'s client secret, if one is stored.
    ///
    /// # Errors
    /// [`StoreError::Record`] if the stored secret cannot be opened, or a database failure.
    pub fn client_secret(&self, provider: &ProviderId) -> Result<Option<SecretString>, StoreError> {
        let id = client_record_id(provider);
        let keys = self.keys_read();
        let Some(tree) = self.existing_tree(TREE_CLIENTS)? else {
            return Ok(None);
        };
        let Some(sealed) = tree
            .get(token_key(id, FIELD_CLIENT_SECRET))
            .map_err(StoreError::db("reading clients"))?
        else {
            return Ok(None);
        };
        self.decode_secret(&keys, TREE_CLIENTS, id, FIELD_CLIENT_SECRET, &sealed)
            .map(Some)
            .map_err(|error| super::record_error(TREE_CLIENTS, id, FIELD_CLIENT_SECRET, error))
    }

    /// Deletes `provider`'s client secret; returns whether there was one. Flushed before it returns.
    ///
    /// # Errors
    /// A database failure.
    pub fn delete_client_secret(&self, provider: &ProviderId) -> Result<bool, StoreError> {
        let w = self.write_lock();
        let key = token_key(client_record_id(provider), FIELD_CLIENT_SECRET);
        let Some(tree) = self.existing_tree(TREE_CLIENTS)? else {
            return Ok(false);
        };
        if !tree.contains_key(&key).map_err(StoreError::db("reading clients"))? {
            return Ok(false);
        }
        self.commit(w, &[(tree, vec![Op::Del(key)])])?;
        Ok(true)
    }
}
