//! `providers list` and `providers add`: the profile's providers. They read and write `config.toml`; only a
//! client secret needs the vault, so they work while the app runs.

use std::io::Read as _;

use anyhow::{Context as _, Result, bail};
use tokenkeep_core::http::LazyHttp;
use tokenkeep_core::ops::{self, AddProvider, RemoveProvider};
use tokenkeep_core::provider::ProviderId;
use tokenkeep_core::provider::RedirectMode;
use tokenkeep_core::provider::catalog::{Readiness, ResolvedProvider};
use tokenkeep_core::provider::config::Imported;
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::PROGRAM_APP;

use crate::Context;
use crate::backend::{Backend, open_vault, runtime, serving_program};
use crate::output::{self, ProviderJson};
use crate::render;

/// The client secret piped in on standard input (the trailing newline removed), protected from here on.
pub(super) fn read_secret_stdin() -> Result<SecretString> {
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the client secret from standard input")?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        bail!("no client secret on standard input (pipe it in, e.g. `printf %s \"$SECRET\" | tokenkeep …`)");
    }
    Ok(SecretString::new(secret.to_owned()))
}

/// `providers list`.
pub(super) fn list(ctx: &Context, json: bool) -> Result<()> {
    let catalog = ops::catalog(&ctx.paths)?;
    if json {
        let items: Vec<ProviderJson<'_>> = catalog.list().map(ProviderJson::from).collect();
        return output::print_json(&items);
    }
    let rows: Vec<Vec<String>> = catalog
        .list()
        .map(|p| {
            let spec = p.spec();
            let state = match p.readiness() {
                Readiness::Ready if p.uses_development_client() => "ready (development client: short sessions)",
                Readiness::Ready => "ready",
                Readiness::NeedsRedirectUri { .. } => "needs a redirect URI",
                Readiness::NeedsInstance { .. } => "needs your server",
                _ => "needs a client id",
            }
            .to_owned();
            vec![
                spec.id.to_string(),
                spec.display_name.clone(),
                output::origin_name(p.origin()).to_owned(),
                state,
            ]
        })
        .collect();
    outln!("{}", render::table(&["id", "name", "kind", "state"], &rows));
    let waiting = catalog
        .list()
        .filter(|p| matches!(p.readiness(), Readiness::NeedsClientId { .. }))
        .count();
    if let Some(p) = catalog.list().find(|p| p.uses_development_client()) {
        outln!(
            "\n{} uses the AT Protocol's development client, which needs no registration but gets short sessions. \
             For full-length ones, host your own client document (`tokenkeep providers client-metadata {} \
             --client-id URL`) and give its address with `tokenkeep providers add {} --client-id URL`.",
            p.spec().display_name,
            p.id(),
            p.id()
        );
    }
    if waiting > 0 {
        outln!(
            "\n{waiting} provider(s) need a client id before you can connect. Register an app in the platform's \
             developer console with the redirect URI shown, then `tokenkeep providers add NAME --client-id ID`:\n"
        );
        let rows: Vec<Vec<String>> = catalog
            .list()
            .filter(|p| matches!(p.readiness(), Readiness::NeedsClientId { .. }))
            .map(|p| {
                let (console, redirect) = registration_text(p);
                vec![p.id().to_string(), console, redirect]
            })
            .collect();
        outln!("{}\n", render::table(&["id", "register at", "redirect uri"], &rows));
    }
    let paste = catalog
        .list()
        .filter(|p| matches!(p.readiness(), Readiness::NeedsRedirectUri { .. }))
        .count();
    if paste > 0 {
        outln!(
            "{paste} provider(s) redirect only to an https page: give the one you registered with `tokenkeep \
             providers add NAME --redirect-uri https://…`."
        );
    }
    for template in catalog
        .list()
        .filter(|p| matches!(p.readiness(), Readiness::NeedsInstance { .. }))
    {
        outln!(
            "{} runs on many servers: add yours with `tokenkeep providers add {} --instance https://your.server`.",
            template.spec().display_name,
            template.id()
        );
    }
    Ok(())
}

/// Where to register a provider's app, and the redirect URI to give there (none for platforms that redirect to
/// a page of the person's), for `providers list` and its JSON.
pub(crate) fn registration(p: &ResolvedProvider) -> (Option<String>, Option<String>) {
    let console = p.setup().map(|s| s.console_url.to_string());
    let redirect = (p.spec().redirect == RedirectMode::Loopback).then(|| p.redirect_uri_to_register());
    (console, redirect)
}

/// [`registration`] in words, where it has no value.
fn registration_text(p: &ResolvedProvider) -> (String, String) {
    let (console, redirect) = registration(p);
    (
        console.unwrap_or_else(|| "its developer console".to_owned()),
        redirect.unwrap_or_else(|| "an https page you control".to_owned()),
    )
}

/// `providers add`.
pub(super) fn add(ctx: &Context, request: AddProvider) -> Result<()> {
    let http = LazyHttp::new();
    let added = runtime()?.block_on(ops::add_provider(&ctx.paths, &http, || open_vault(ctx), request))?;
    let spec = added.provider.spec();
    let verb = if added.created { "Added" } else { "Updated" };
    outln!("{verb} provider {} ({}).", spec.id, spec.display_name);
    if added.secret_stored {
        outln!("Its client secret is sealed in the vault.");
    }
    match added.provider.readiness() {
        Readiness::Ready => next_step(ctx, &spec.id, &spec.display_name),
        Readiness::NeedsClientId { message }
        | Readiness::NeedsRedirectUri { message }
        | Readiness::NeedsInstance { message } => outln!("{message}"),
        _ => {}
    }
    Ok(())
}

/// `providers import FILE`.
pub(super) fn import(ctx: &Context, file: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_name()
        .map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let imported = ops::import_provider(&ctx.paths, &name, &text)?;
    let spec = imported.provider.spec();
    let verb = match imported.how {
        Imported::Replaced => "Replaced",
        Imported::OverridesBuiltIn => "Imported (overriding the built-in definition of the same id)",
        _ => "Imported",
    };
    outln!("{verb} provider {} ({}).", spec.id, spec.display_name);
    match imported.provider.readiness().message() {
        None => next_step(ctx, &spec.id, &spec.display_name),
        Some(message) => outln!("{message}"),
    }
    Ok(())
}

/// What to do with a provider that is ready: `tokenkeep connect`, unless the app or the daemon holds the store —
/// then it has picked the change up (it looks at the configuration every two seconds) and connecting goes there.
fn next_step(ctx: &Context, id: &ProviderId, name: &str) {
    match serving_program(ctx) {
        None => outln!("Connect an account with `tokenkeep connect {id}`."),
        Some(program) if program == PROGRAM_APP => outln!(
            "The Tokenkeep app is running and picks this up by itself: connect an account from its window (Add \
             account → {name}). `tokenkeep connect {id}` works once the app is closed."
        ),
        Some(_) => outln!(
            "`tokenkeep daemon` is running and picks this up by itself. `tokenkeep connect {id}` needs the store to \
             itself: stop the daemon, connect, then start it again."
        ),
    }
}

/// `providers export ID`.
pub(super) fn export(ctx: &Context, id: &ProviderId) -> Result<()> {
    let text = ops::export_provider(&ctx.paths, id)?;
    out!("{text}");
    if !text.ends_with('\n') {
        outln!();
    }
    Ok(())
}

/// `providers remove ID [--with-connections]`.
pub(super) fn remove(ctx: &Context, id: ProviderId, with_connections: bool) -> Result<()> {
    let removed = Backend::open(ctx)?.run(RemoveProvider { id, with_connections })?;
    for report in &removed.disconnected {
        outln!("Disconnected {} from {}.", report.account, report.provider);
    }
    if removed.setup_forgotten {
        outln!(
            "Forgot the setup of {} (its client id and secret): it is built in, so it stays listed, needing setup.",
            removed.id
        );
    } else {
        outln!("Removed provider {}.", removed.id);
    }
    Ok(())
}
