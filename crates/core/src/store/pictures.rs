//! Account pictures, sealed in the `pictures` tree beside the connection they belong to.
//!
//! Key: the connection's record id ‖ `0x00` ‖ `picture` (the token trees' layout, so rotation, verification and
//! export treat these records like any other). Sealed value: the media type in ASCII, `\n`, the image bytes; the
//! connection's metadata names the picture's fingerprint, so a window fetches it again only when it changes.
//!
//! Pictures are cosmetic and can be 128 KiB each, so **they are not in the backups** (which are rewritten after
//! every commit): a restore clears every restored connection's `picture`, and the window shows the platform's mark
//! until the account is connected again.

use super::{ConnectionId, Keys, Op, RecordError, StoreError, Vault, record_error, token_key};
use crate::picture::AccountPicture;

/// The tree of sealed account pictures.
pub const TREE_PICTURES: &str = "pictures";
/// The field a picture is sealed under.
pub const FIELD_PICTURE: &str = "picture";

impl Vault {
    /// The pictures tree, created if needed: for writers only (readers use `existing_tree`).
    fn pictures_tree(&self) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(TREE_PICTURES)
            .map_err(StoreError::db("opening the pictures tree"))
    }

    /// Seals `picture` as connection `id`'s picture, replacing any previous one, and names it in the connection's
    /// metadata, in one write (flushed before it returns).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Record`] if the connection's metadata cannot be read, or a sealing
    /// or database failure (then nothing changed).
    pub fn set_picture(&self, id: ConnectionId, picture: &AccountPicture) -> Result<(), StoreError> {
        let w = self.write_lock();
        let mut meta = self.sealed_meta(id)?;
        meta.picture = Some(picture.tag());
        meta.updated_at = self.clock.unix_secs();
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(picture.bytes().len() + 16));
        plain.extend_from_slice(picture.kind().media_type().as_bytes());
        plain.push(b'\n');
        plain.extend_from_slice(picture.bytes());
        let sealed = {
            let keys = self.keys_read();
            self.seal(&keys.current, TREE_PICTURES, id, FIELD_PICTURE, &plain)?
        };
        let write = (
            self.pictures_tree()?,
            vec![Op::Put(token_key(id, FIELD_PICTURE), sealed)],
        );
        self.write_connection_with(w, id, &meta, None, vec![write])?.wait()
    }

    /// Connection `id`'s picture, if one is stored.
    ///
    /// # Errors
    /// [`StoreError::Record`] if the stored picture cannot be opened, or a database failure.
    pub fn picture(&self, id: ConnectionId) -> Result<Option<AccountPicture>, StoreError> {
        let keys = self.keys_read();
        let Some(tree) = self.existing_tree(TREE_PICTURES)? else {
            return Ok(None);
        };
        let Some(sealed) = tree
            .get(token_key(id, FIELD_PICTURE))
            .map_err(StoreError::db("reading pictures"))?
        else {
            return Ok(None);
        };
        self.decode_picture(&keys, id, &sealed)
            .map(Some)
            .map_err(|error| record_error(TREE_PICTURES, id, FIELD_PICTURE, error))
    }

    /// Opens a sealed picture and checks that its bytes are the image its media type says.
    pub(super) fn decode_picture(
        &self,
        keys: &Keys,
        id: ConnectionId,
        sealed: &[u8],
    ) -> Result<AccountPicture, RecordError> {
        let plain = self.open_sealed(keys, TREE_PICTURES, id, FIELD_PICTURE, sealed)?;
        let plain = plain.dangerously_expose();
        let split = plain.iter().position(|&b| b == b'\n').ok_or(RecordError::Malformed)?;
        let (media_type, bytes) = (&plain[..split], &plain[split + 1..]);
        let picture = AccountPicture::from_bytes(bytes.to_vec()).map_err(|_| RecordError::Malformed)?;
        if picture.kind().media_type().as_bytes() != media_type {
            return Err(RecordError::Malformed);
        }
        Ok(picture)
    }
}
