//! Fail points: named places in the maintenance operations where a test can
//! make Floe fail or die, to prove a crash at any step loses no data.
//!
//! They are off unless the `FLOE_FAILPOINTS` environment variable names them
//! when the process starts: `name=action[,name=action...]` with action
//! `error` (the operation fails there with [`Error::Injected`]) or `exit` (the
//! process exits at once with status 86, as if killed). The check is one
//! lookup in a map read once, so they stay compiled into every build.
//!
//! In-process tests can also [`set_hook`] an async function on a fail point
//! of one table (by its location, so tests running side by side do not see
//! each other's hooks): it runs when an operation on that table passes there
//! (a concurrent append between a compaction's write and its commit, say) and
//! can make it fail.
//!
//! | name | where |
//! |---|---|
//! | `compact.files_written` | new data files written, nothing committed |
//! | `commit.manifests_written` | manifests and manifest list written, not committed |
//! | `commit.swap` | new metadata file written, catalog not yet swapped |
//! | `compact.committed` | committed, old files not yet cleaned up |
//! | `expire.committed` | expired snapshots removed from metadata, files not yet deleted |

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use futures::future::BoxFuture;

use crate::{Error, Result};

/// The exit status of the `exit` action.
pub const EXIT_STATUS: i32 = 86;

fn points() -> &'static HashMap<String, String> {
    static POINTS: OnceLock<HashMap<String, String>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var("FLOE_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| {
                let (name, action) = pair.split_once('=')?;
                Some((name.trim().to_owned(), action.trim().to_owned()))
            })
            .collect()
    })
}

/// What a hook runs; an error makes the operation fail there.
pub type Hook = Arc<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>;

type Hooks = HashMap<(String, String), Hook>;

fn hooks() -> &'static Mutex<Hooks> {
    static HOOKS: OnceLock<Mutex<Hooks>> = OnceLock::new();
    HOOKS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs `hook` every time an operation on the table at `location` passes
/// `name` (in this process), until [`clear_hook`].
pub fn set_hook(name: &str, location: &str, hook: Hook) {
    if let Ok(mut hooks) = hooks().lock() {
        hooks.insert((name.to_owned(), location.to_owned()), hook);
    }
}

/// Removes the hook on `name` for the table at `location`.
pub fn clear_hook(name: &str, location: &str) {
    if let Ok(mut hooks) = hooks().lock() {
        hooks.remove(&(name.to_owned(), location.to_owned()));
    }
}

/// Passes the fail point `name` in an operation on the table at `location`:
/// runs its hook, then fails or exits if a test armed it.
///
/// # Errors
///
/// [`Error::Injected`] when armed with `error`, the hook's error.
pub async fn hit(name: &str, location: &str) -> Result<()> {
    let hook = hooks()
        .lock()
        .ok()
        .and_then(|h| h.get(&(name.to_owned(), location.to_owned())).cloned());
    if let Some(hook) = hook {
        hook().await?;
    }
    match points().get(name).map(String::as_str) {
        None => Ok(()),
        Some("exit") => {
            tracing::warn!(failpoint = name, "fail point: exiting");
            std::process::exit(EXIT_STATUS)
        }
        Some(_) => Err(Error::Injected(name.to_owned())),
    }
}
