//! The app window through WebDriver, as the end-to-end tests drive it: waits for a condition (a CSS selector, its
//! absence), each with a limit, that ride out the UI re-rendering an element while it is being read.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, Locator};

/// Waits two animation frames so a screenshot shows what was just rendered, not a stale frame (a cold Mesa shader
/// cache can otherwise give one).
pub const SETTLE_FRAMES: &str =
    "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done()));";

/// `[data-testid='<id>']`.
pub fn tid(id: &str) -> String {
    format!("[data-testid='{id}']")
}

/// A WebDriver session on the app's window.
#[derive(Debug)]
pub struct Ui {
    /// The session.
    pub client: Client,
}

impl Ui {
    /// Waits (at most `limit`) for an element matching `css`. WebKitWebDriver reports an element that the UI
    /// replaced while it was being found as stale; the wait goes on then.
    pub async fn wait_for(&self, css: &str, limit: Duration, what: &str) -> Result<Element> {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .client
                .wait()
                .at_most(deadline.saturating_duration_since(Instant::now()))
                .every(Duration::from_millis(100))
                .for_element(Locator::Css(css))
                .await;
            match found {
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {}
                found => return found.with_context(|| format!("{what} (waited {limit:?} for `{css}`)")),
            }
        }
    }

    /// Waits (at most `limit`) until nothing matches `css`.
    pub async fn wait_gone(&self, css: &str, limit: Duration, what: &str) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            match self.client.find_all(Locator::Css(css)).await {
                Ok(found) if found.is_empty() => return Ok(()),
                Ok(_) => {}
                // Being replaced: still there.
                Err(e) if e.is_stale_element_reference() => {}
                Err(e) => return Err(e).with_context(|| format!("{what} (`{css}`)")),
            }
            if Instant::now() > deadline {
                bail!("{what} (`{css}` still present after {limit:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Finds `css` (waiting at most `limit`) and runs `read` on it. The UI re-renders some parts as events arrive
    /// (the waiting state when `connect-progress` comes, for one), so an element found a moment ago may be stale:
    /// then it is found again, within the same limit.
    pub async fn on<T, F, Fut>(&self, css: &str, limit: Duration, what: &str, read: F) -> Result<T>
    where
        F: Fn(Element) -> Fut,
        Fut: Future<Output = Result<T, CmdError>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let element = self.wait_for(css, left, what).await?;
            match read(element).await {
                Ok(value) => return Ok(value),
                Err(e) if (e.is_stale_element_reference() || e.is_no_such_element()) && Instant::now() < deadline => {}
                Err(e) => return Err(e).with_context(|| format!("{what} (`{css}`)")),
            }
        }
    }

    /// Clicks `css`, scrolled to the middle of its scrolling box first: WebKitWebDriver clicks an element's
    /// centre where it is, so a button at the edge of a scrolled list (the Connect panel's rows) would be missed.
    pub async fn click(&self, css: &str, what: &str) -> Result<()> {
        self.on(css, Duration::from_secs(5), what, |e| async move {
            let arg = serde_json::to_value(&e).map_err(CmdError::Json)?;
            e.clone()
                .client()
                .execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg])
                .await?;
            e.click().await.map(drop)
        })
        .await
    }

    /// The text of `css`, waiting at most `limit` for it.
    pub async fn text_of(&self, css: &str, limit: Duration, what: &str) -> Result<String> {
        self.on(css, limit, what, |e| async move { e.text().await }).await
    }

    /// The text of `css` and its attribute `name`, read from the same element, waiting at most `limit` for it.
    pub async fn text_and_attr(
        &self,
        css: &str,
        name: &str,
        limit: Duration,
        what: &str,
    ) -> Result<(String, Option<String>)> {
        self.on(css, limit, what, |e| async move {
            Ok((e.text().await?, e.attr(name).await?))
        })
        .await
    }

    pub async fn text(&self, css: &str) -> Result<String> {
        self.text_of(css, Duration::from_secs(5), "an element that was just there is gone")
            .await
    }

    pub async fn attr(&self, css: &str, name: &str) -> Result<Option<String>> {
        Ok(self
            .text_and_attr(
                css,
                name,
                Duration::from_secs(5),
                "an element that was just there is gone",
            )
            .await?
            .1)
    }

    /// Replaces the value of the input `css` with `text`, as typing would.
    /// The field is scrolled into the middle of its scroll box first: WebKitWebDriver refuses to clear a field
    /// below a dialog's fold.
    pub async fn fill(&self, css: &str, text: &str, what: &str) -> Result<()> {
        self.on(css, Duration::from_secs(5), what, |e| {
            let text = text.to_owned();
            let client = self.client.clone();
            async move {
                let arg = serde_json::to_value(&e).map_err(|_| CmdError::NotJson(String::new()))?;
                client
                    .execute("arguments[0].scrollIntoView({ block: 'center' });", vec![arg])
                    .await?;
                e.clear().await?;
                e.send_keys(&text).await
            }
        })
        .await
    }

    /// Saves a screenshot (after the frame settled) as `dir/name.png`.
    pub async fn screenshot(&self, dir: &std::path::Path, name: &str) -> Result<()> {
        self.client.execute_async(SETTLE_FRAMES, vec![]).await?;
        let png = self.client.screenshot().await?;
        anyhow::ensure!(png.starts_with(b"\x89PNG"), "the screenshot {name} is not a PNG");
        std::fs::write(dir.join(format!("{name}.png")), &png)?;
        Ok(())
    }
}
