//! `list`, `status`, `show`, `verify` and `export --envelopes`: what is stored, offline.

use std::io::Write as _;

use anyhow::Result;
use tokenkeep_core::ops::{ExportEnvelopes, List, Picture, Show, Shown, StoredPicture, Verify, VerifyReport};

use tokenkeep_core::store::{ConnectionMeta, ConnectionStatus};

use super::{Damaged, NeedsYou};
use crate::Context;
use crate::backend::Backend;
use crate::output::{self, ExportJson, ListJson, ProblemJson, SecretBuf, ShowJson, VerifyJson};
use crate::render;

/// `list`.
pub(super) fn list(ctx: &Context, json: bool) -> Result<()> {
    let entries = Backend::open(ctx)?.run(List {})?;
    if json {
        let items: Vec<ListJson<'_>> = entries.iter().map(ListJson::from).collect();
        return output::print_json(&items);
    }
    if entries.is_empty() {
        outln!(
            "No accounts connected yet. Connect one with `tokenkeep connect PROVIDER` (see `tokenkeep providers list`)."
        );
        return Ok(());
    }
    let now = render::now_secs();
    let pending = |entry: &&tokenkeep_core::ops::ConnectionEntry| {
        entry
            .meta
            .as_ref()
            .is_ok_and(|m| m.status == ConnectionStatus::RevocationPending)
    };
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter(|entry| !pending(entry))
        .map(|entry| match &entry.meta {
            Ok(m) => vec![
                entry.id.to_hex(),
                m.provider.to_string(),
                m.account.clone(),
                m.status.as_str().replace('_', " "),
                render::expiry(m.expires_at, now),
                m.scopes.join(" "),
            ],
            Err(problem) => vec![
                entry.id.to_hex(),
                "?".into(),
                "?".into(),
                "damaged".into(),
                problem.clone(),
                String::new(),
            ],
        })
        .collect();
    if rows.is_empty() {
        outln!("No accounts connected.");
    } else {
        outln!(
            "{}",
            render::table(&["id", "provider", "account", "status", "expiry", "scopes"], &rows)
        );
    }
    let revoking: Vec<Vec<String>> = entries
        .iter()
        .filter(pending)
        .filter_map(|entry| {
            let m = entry.meta.as_ref().ok()?;
            let r = m.revocation?;
            Some(vec![
                entry.id.to_hex(),
                m.provider.to_string(),
                m.account.clone(),
                format!("{} so far", r.attempts),
                render::relative(r.next_attempt_at, now),
                render::rfc3339(r.give_up_at),
            ])
        })
        .collect();
    if !revoking.is_empty() {
        outln!(
            "\nDisconnected, revocation pending (not used any more; Tokenkeep keeps trying to revoke their access \
             while the app or `tokenkeep daemon` runs; `tokenkeep disconnect ID` tries now, `--delete-now` gives up):"
        );
        outln!(
            "{}",
            render::table(
                &["id", "provider", "account", "attempts", "next try", "gives up"],
                &revoking
            )
        );
    }
    Ok(())
}

/// `status`: per account one line — `ok`, `refreshing` (the engine is at it: nothing to do), or `needs you`, and
/// why — most urgent first, then a summary; exit status 1 when any account needs the person.
pub(super) fn status(ctx: &Context) -> Result<()> {
    let entries = Backend::open(ctx)?.run(List {})?;
    if entries.is_empty() {
        outln!("No accounts connected yet. Connect one with `tokenkeep connect PROVIDER`.");
        return Ok(());
    }
    let now = render::now_secs();
    let revoking = entries
        .iter()
        .filter(|e| {
            e.meta
                .as_ref()
                .is_ok_and(|m| m.status == ConnectionStatus::RevocationPending)
        })
        .count();
    let mut rows: Vec<(bool, Vec<String>)> = entries
        .iter()
        .map(|entry| match &entry.meta {
            Ok(meta) => {
                let (state, why) = status_line(meta, now);
                let needs_you = meta.status.needs_user();
                (
                    needs_you,
                    vec![format!("{}:{}", meta.provider, meta.account), state.into(), why],
                )
            }
            Err(problem) => (
                true,
                vec![
                    entry.id.to_hex(),
                    "needs you".into(),
                    format!("its record is damaged ({problem}): see `tokenkeep verify`, or restore from a backup"),
                ],
            ),
        })
        .collect();
    // Problems first; otherwise the order of `list`.
    rows.sort_by_key(|(needs_you, _)| !needs_you);
    let needing = rows.iter().filter(|(needs_you, _)| *needs_you).count();
    let table: Vec<Vec<String>> = rows.into_iter().map(|(_, row)| row).collect();
    outln!("{}", render::table(&["account", "state", "why"], &table));
    let total = table.len() - revoking;
    let accounts = if total == 1 { "account" } else { "accounts" };
    let revoking = match revoking {
        0 => String::new(),
        1 => "; 1 disconnected account is still being revoked".to_owned(),
        n => format!("; {n} disconnected accounts are still being revoked"),
    };
    match needing {
        0 => outln!("\n{total} {accounts}, all fine{revoking}."),
        n => outln!(
            "\n{total} {accounts}, {n} {} you{revoking}.",
            if n == 1 { "needs" } else { "need" }
        ),
    }
    if needing == 0 {
        Ok(())
    } else {
        Err(NeedsYou(needing).into())
    }
}

/// The state word and the reason of one account, in a creator's words.
fn status_line(meta: &ConnectionMeta, now: u64) -> (&'static str, String) {
    let reason = |fallback: &str| meta.last_error.clone().unwrap_or_else(|| fallback.to_owned());
    let reconnect = format!("run `tokenkeep connect {}`", meta.provider);
    match meta.status {
        ConnectionStatus::Connected => match meta.expires_at {
            // Nothing kept it fresh meanwhile (no app, no daemon): the next use refreshes it first.
            Some(at) if at <= now => (
                "ok",
                format!("{}; refreshed when next used", render::expiry(Some(at), now)),
            ),
            at => ("ok", render::expiry(at, now)),
        },
        ConnectionStatus::Refreshing => (
            "refreshing",
            "a refresh is under way (or was cut short: it is retried when the app or `tokenkeep refresh` next runs)"
                .into(),
        ),
        ConnectionStatus::Retrying => ("refreshing", render::with_retry(meta, &reason("a refresh failed"))),
        ConnectionStatus::CheckNeeded => (
            "refreshing",
            "restored from a backup: the next refresh checks that its sign-in still holds".into(),
        ),
        ConnectionStatus::NeedsReconnect => (
            "needs you",
            format!(
                "{} — {reconnect}",
                reason("the platform no longer accepts this sign-in")
            ),
        ),
        ConnectionStatus::Interrupted => (
            "needs you",
            format!(
                "{} — {reconnect}",
                reason("a refresh was cut short and its outcome is unknown")
            ),
        ),
        ConnectionStatus::Error => (
            "needs you",
            format!("{} — see `tokenkeep show`", reason("the last refresh failed")),
        ),
        ConnectionStatus::RevocationPending => (
            "revoking",
            match meta.revocation {
                Some(r) => format!(
                    "disconnected; the platform could not be reached to revoke its access ({}): next try {}, gives \
                     up {}",
                    reason("unreachable"),
                    render::relative(r.next_attempt_at, now),
                    render::rfc3339(r.give_up_at)
                ),
                None => "disconnected; its access is being revoked".to_owned(),
            },
        ),
        other if other.needs_user() => ("needs you", reason(other.as_str())),
        other => (other.as_str(), reason("")),
    }
}

/// `show CONNECTION [--json] [--reveal]`. With `--reveal`, the values go from their `SecretString`s into a
/// zeroized buffer and from there to stdout, and nowhere else.
pub(super) fn show(ctx: &Context, connection: String, json: bool, reveal: bool) -> Result<()> {
    let backend = Backend::open(ctx)?;
    let shown = backend.run(Show { connection, reveal })?;
    // The picture's type and size, from the vault (nothing is fetched): only when the metadata names one.
    let picture = match shown.inspection.meta.picture {
        Some(_) => backend.run(Picture {
            connection: shown.inspection.id.to_hex(),
        })?,
        None => None,
    };
    if reveal {
        eprintln!(
            "tokenkeep: WARNING: printing stored token values. Anyone who sees them can act as this account; do not \
             paste them into chats, tickets or logs."
        );
    }
    let mut out = SecretBuf::with_capacity(8 * 1024);
    if json {
        serde_json::to_writer_pretty(&mut out, &ShowJson::from(&shown))?;
        out.write_all(b"\n")?;
    } else {
        write_show_text(&mut out, &shown, picture.as_ref())?;
    }
    out.print()?;
    Ok(())
}

fn write_show_text(out: &mut SecretBuf, shown: &Shown, picture: Option<&StoredPicture>) -> std::io::Result<()> {
    let (data, meta) = (&shown.inspection, &shown.inspection.meta);
    let now = render::now_secs();
    let when = |t: Option<u64>| {
        t.map_or("never".to_owned(), |t| {
            format!("{} ({})", render::relative(t, now), render::rfc3339(t))
        })
    };
    writeln!(out, "connection    {}", data.id)?;
    writeln!(out, "provider      {}", meta.provider)?;
    writeln!(out, "account       {}", meta.account)?;
    if let Some(subject) = &meta.subject {
        writeln!(out, "subject       {subject}")?;
    }
    writeln!(out, "status        {}", meta.status.as_str().replace('_', " "))?;
    if let Some(error) = &meta.last_error {
        writeln!(out, "last error    {error}")?;
    }
    writeln!(
        out,
        "scopes        {}",
        if meta.scopes.is_empty() {
            "(none reported)".to_owned()
        } else {
            meta.scopes.join(" ")
        }
    )?;
    writeln!(out, "expiry        {}", render::expiry(meta.expires_at, now))?;
    writeln!(out, "last refresh  {}", when(meta.last_refresh_at))?;
    writeln!(out, "connected     {}", when(Some(meta.created_at)))?;
    if let Some(picture) = picture {
        writeln!(
            out,
            "picture       {}, {}, stored at connect",
            picture.media_type,
            render::bytes(picture.bytes.len())
        )?;
    }
    writeln!(out, "sealed with   key {}", data.key_id)?;
    if let Some(binding) = &data.binding {
        writeln!(out, "tokens are    {}", binding.describe())?;
    }
    writeln!(out, "tokens:")?;
    for t in &data.tokens {
        let kind = t.kind.field();
        match t.length {
            None => writeln!(out, "  {kind:<14} not stored")?,
            Some(len) => {
                let form = if t.jwt.is_some() { "JWT" } else { "opaque" };
                writeln!(out, "  {kind:<14} stored, {len} bytes, {form}")?;
                if let Some(jwt) = &t.jwt {
                    for (name, value) in &jwt.claims {
                        let shown = match (name.as_str(), value.as_u64()) {
                            ("exp" | "iat" | "nbf" | "auth_time", Some(t)) => {
                                format!("{value} ({})", render::rfc3339(t))
                            }
                            _ => value.to_string(),
                        };
                        writeln!(out, "      {name:<12} {shown}")?;
                    }
                }
                if let Some(value) = shown.revealed(t.kind) {
                    // Straight from the SecretString into the zeroized buffer: `write_all`, not a format string.
                    out.write_all(b"      value        ")?;
                    out.write_all(value.dangerously_expose().as_bytes())?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    Ok(())
}

/// `verify [--json]`.
pub(super) fn verify(ctx: &Context, json: bool) -> Result<()> {
    let VerifyReport {
        records: checked,
        key_id,
        problems,
    } = Backend::open(ctx)?.run(Verify {})?;
    if json {
        output::print_json(&VerifyJson {
            key_id: key_id.to_hex(),
            ok: problems.is_empty(),
            problems: problems.iter().map(ProblemJson::from).collect(),
            records: checked,
        })?;
    } else if problems.is_empty() {
        outln!("Checked {checked} sealed record(s) with key {key_id}: all intact.");
    } else {
        let rows: Vec<Vec<String>> = problems
            .iter()
            .map(|p| vec![p.tree.clone(), p.record.clone(), p.field.clone(), p.problem.clone()])
            .collect();
        outln!(
            "Checked {checked} sealed record(s) with key {key_id}; {} problem(s):\n",
            problems.len()
        );
        outln!("{}", render::table(&["tree", "record", "field", "problem"], &rows));
        outln!(
            "\nThe other records are intact and usable. Nothing was deleted: disconnect or reconnect the affected \
             accounts, or restore the store from a backup."
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Damaged(problems.len()).into())
    }
}

/// `export --envelopes`: one JSON line per sealed record.
pub(super) fn export(ctx: &Context) -> Result<()> {
    let envelopes = Backend::open(ctx)?.run(ExportEnvelopes {})?;
    let mut out = std::io::stdout().lock();
    for envelope in &envelopes {
        serde_json::to_writer(&mut out, &ExportJson::from(envelope))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
