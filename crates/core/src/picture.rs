//! Account pictures: fetched once, when an account is connected, and stored sealed beside its metadata, so a
//! window shows who an account is without ever asking a platform at display time.
//!
//! A picture is personal (it shows a face, a channel), so it is treated like the account name: sealed, never
//! logged (neither its bytes nor its address), deleted with the connection. The fetch is deliberately narrow:
//! - the address comes from the provider's identity answer (`oauth::identity`): `https://`, or `http://`
//!   on a loopback address for the local emulations;
//! - it is a plain GET with no credentials: the access token never goes to an image host;
//! - the answer must be `200`, at most [`MAX_PICTURE_BYTES`], and one of PNG, JPEG, GIF or WebP **by its bytes**
//!   (the media type is sniffed, never taken from the answer's `Content-Type`; SVG, which can hold script, is not
//!   accepted);
//! - any failure means no picture: the window draws the platform's mark instead, and connecting goes on.

use std::fmt;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::http::HttpClient;

/// The largest picture stored. Platforms' own avatar sizes (48 to 400 pixels) are far below it.
pub const MAX_PICTURE_BYTES: usize = 128 * 1024;

/// How long fetching a picture may take before connecting goes on without it.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// An image format a picture may have, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageKind {
    /// `\x89PNG\r\n\x1a\n`.
    Png,
    /// `FF D8 FF`.
    Jpeg,
    /// `GIF87a` / `GIF89a`.
    Gif,
    /// `RIFF….WEBP`.
    Webp,
}

impl ImageKind {
    /// The format of `bytes`, by their signature.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }

    /// The media type (`image/png`).
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }
}

/// An account's picture: image bytes of a known format, within [`MAX_PICTURE_BYTES`].
#[derive(Clone, PartialEq, Eq)]
pub struct AccountPicture {
    kind: ImageKind,
    bytes: Vec<u8>,
}

impl fmt::Debug for AccountPicture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal: only its size and format.
        f.debug_struct("AccountPicture")
            .field("kind", &self.kind)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Why bytes are not a picture Tokenkeep stores.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PictureError {
    /// Empty, or not PNG, JPEG, GIF or WebP.
    #[error("it is not a PNG, JPEG, GIF or WebP image")]
    NotAnImage,
    /// Larger than [`MAX_PICTURE_BYTES`].
    #[error("it is larger than {} KiB", MAX_PICTURE_BYTES / 1024)]
    TooLarge,
    /// The image host did not answer `200` with the image.
    #[error("the image host answered HTTP {0}")]
    Status(u16),
    /// The request failed or took too long.
    #[error("the image could not be fetched: {0}")]
    Fetch(String),
}

impl AccountPicture {
    /// Checks `bytes`: a known image format by signature, within the size limit.
    ///
    /// # Errors
    /// [`PictureError::TooLarge`] or [`PictureError::NotAnImage`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, PictureError> {
        if bytes.len() > MAX_PICTURE_BYTES {
            return Err(PictureError::TooLarge);
        }
        let kind = ImageKind::sniff(&bytes).ok_or(PictureError::NotAnImage)?;
        Ok(Self { kind, bytes })
    }

    /// The image's format.
    pub fn kind(&self) -> ImageKind {
        self.kind
    }

    /// The image bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A short fingerprint of the bytes (16 hex digits of SHA-256): a window asks for the picture again only when
    /// it changes.
    pub fn tag(&self) -> String {
        hex::encode(&Sha256::digest(&self.bytes)[..8])
    }
}

/// Fetches the picture at `address` (see the module documentation for what is accepted).
///
/// # Errors
/// A [`PictureError`]; none of them names the address.
pub async fn fetch(http: &dyn HttpClient, address: &url::Url) -> Result<AccountPicture, PictureError> {
    let request = http::Request::get(address.as_str())
        .header(http::header::ACCEPT, "image/png, image/jpeg, image/gif, image/webp")
        .body(Vec::new())
        .map_err(|_| PictureError::Fetch("the address is not usable".into()))?;
    let response = tokio::time::timeout(FETCH_TIMEOUT, http.execute(request))
        .await
        .map_err(|_| PictureError::Fetch(format!("no answer within {} s", FETCH_TIMEOUT.as_secs())))?
        .map_err(|error| PictureError::Fetch(error.to_string()))?;
    if response.status() != http::StatusCode::OK {
        return Err(PictureError::Status(response.status().as_u16()));
    }
    AccountPicture::from_bytes(response.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn formats_are_recognised_by_their_bytes_only() {
        assert_eq!(ImageKind::sniff(PNG), Some(ImageKind::Png));
        assert_eq!(ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageKind::Jpeg));
        assert_eq!(ImageKind::sniff(b"GIF89a...."), Some(ImageKind::Gif));
        assert_eq!(ImageKind::sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        for bad in [
            &b""[..],
            b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>",
            b"<html>",
            b"RIFF\x10\0\0\0WAVE",
            b"\x89PNG",
        ] {
            assert_eq!(ImageKind::sniff(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pictures_are_bounded() {
        let mut big = PNG.to_vec();
        big.resize(MAX_PICTURE_BYTES + 1, 0);
        assert_eq!(AccountPicture::from_bytes(big), Err(PictureError::TooLarge));
        let mut fits = PNG.to_vec();
        fits.resize(MAX_PICTURE_BYTES, 0);
        let picture = AccountPicture::from_bytes(fits).unwrap();
        assert_eq!(picture.kind().media_type(), "image/png");
        assert_eq!(picture.tag().len(), 16);
        assert!(!format!("{picture:?}").contains("137"), "the bytes stay out of Debug");
    }
}
