//! Which archive a state belongs to (`<home>/archive-binding.json`).
//!
//! A state's records describe one archive: read against another, every archived file
//! would look deleted by the user and the deletion rules would tombstone them all. So
//! the first sync binds the state to its archive (a OneDrive drive and app folder, by
//! id, or a local folder, by absolute path), and every later run checks it. Moving a
//! state to another archive is explicit: `sync --rebind`.
//!
//! Earlier releases wrote `<home>/archive-place`, a sentence ("the folder /x", "the
//! OneDrive app folder of app <client id>"); it is still read, and replaced by the
//! precise binding at the first run that matches it.

use crate::setup::Env;
use receipt_sync::sink::{ArchiveSink, OneDriveSink};
use receipt_sync::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The binding's file, in the home.
const BINDING_FILE: &str = "archive-binding.json";
/// The sentence written by earlier releases, in the home.
const LEGACY_FILE: &str = "archive-place";

/// An archive, precisely.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArchiveBinding {
    /// A OneDrive app folder: another Microsoft account has another drive, another app
    /// registration another app folder.
    #[serde(rename = "onedrive")]
    OneDrive {
        /// The drive's id.
        drive_id: String,
        /// The app registration's client id, which names the app folder.
        client_id: String,
        /// The app folder's id when it was bound. Informative only: a user who deletes
        /// the whole app folder deletes every account folder in it, and the deletion
        /// rules decide what that means (the receipts are removed for good), not a
        /// refusal; OneDrive makes a new app folder, with a new id, at the next request.
        app_folder_id: String,
    },
    /// A local folder.
    Local {
        /// Its absolute path.
        root: PathBuf,
    },
}

impl ArchiveBinding {
    /// Whether both name the same archive: the same local folder, or the same app's
    /// folder in the same drive (whatever its id today).
    fn same_archive(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::OneDrive {
                    drive_id,
                    client_id,
                    ..
                },
                Self::OneDrive {
                    drive_id: other_drive,
                    client_id: other_client,
                    ..
                },
            ) => drive_id == other_drive && client_id == other_client,
            (Self::Local { root }, Self::Local { root: other }) => root == other,
            _ => false,
        }
    }
}

impl fmt::Display for ArchiveBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OneDrive {
                drive_id,
                client_id,
                ..
            } => write!(
                f,
                "the OneDrive app folder of app {client_id} in drive {drive_id}"
            ),
            Self::Local { root } => write!(f, "the folder {}", root.display()),
        }
    }
}

/// What a run does about the binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// Checks only (a dry run): nothing is written.
    Check,
    /// Checks, and binds a state that has no archive yet.
    Bind,
    /// Binds the state to this archive, whatever it was bound to.
    Rebind,
}

/// The sink a command was pointed at, with the archive it is.
pub struct BoundSink {
    /// The sink.
    pub sink: Arc<dyn ArchiveSink>,
    /// The archive it writes to.
    pub binding: ArchiveBinding,
    /// Set when the state must be moved to this archive (`--rebind` and another
    /// archive): the caller rebinds the state, then calls [`BoundSink::save`].
    pub rebind_from: Option<String>,
}

impl BoundSink {
    /// Writes the binding. Only after the state was rebound: a binding saved first, then
    /// a crash, would leave the old records to be read against the new archive.
    pub fn save(&self, env: &Env) -> Result<()> {
        save(&env.home()?, &self.binding)
    }
}

/// Whether the home records no archive yet: the next pass is the archive's first.
pub fn is_unbound(env: &Env) -> Result<bool> {
    Ok(matches!(Stored::read(&env.home()?)?, Stored::None))
}

/// The sink of `env` and the archive it is, checked against the state's binding.
pub async fn bind(env: &Env, mode: BindMode) -> Result<BoundSink> {
    let home = env.home()?;
    let stored = Stored::read(&home)?;
    // The kind of archive is known without the network: a state bound to a local
    // folder pointed at OneDrive (or back) is refused before any request.
    let (sink, binding): (Arc<dyn ArchiveSink>, ArchiveBinding) = match &env.local {
        Some(dir) => {
            let root = std::path::absolute(dir).map_err(|e| Error::io("resolve", dir, e))?;
            let binding = ArchiveBinding::Local { root };
            if mode != BindMode::Rebind {
                stored.check_kind(&binding)?;
            }
            (Arc::new(env.local_dir(dir)?), binding)
        }
        None => {
            let sink = env.onedrive()?;
            if mode != BindMode::Rebind {
                stored.check_kind_onedrive(env)?;
            }
            let binding = onedrive_binding(env, &sink).await?;
            (Arc::new(sink), binding)
        }
    };
    let legacy_place = legacy_place(env, &binding);
    let matches = match &stored {
        Stored::None => None,
        Stored::Binding(stored) => Some(stored.same_archive(&binding)),
        Stored::Legacy(place) => Some(*place == legacy_place),
    };
    let mut bound = BoundSink {
        sink,
        binding,
        rebind_from: None,
    };
    match (matches, mode) {
        (Some(true), BindMode::Check) | (None, BindMode::Check) => {}
        // Bound already, as recorded (a legacy sentence, or an app folder id that changed
        // since, is replaced by the precise binding below).
        (Some(true), _) if matches!(&stored, Stored::Binding(b) if *b == bound.binding) => {}
        // Asked to rebind a state that records no archive: its records may still be
        // of another one, and adopting costs no write.
        (None, BindMode::Rebind) => bound.rebind_from = Some("the archive it was made with".into()),
        (Some(true), _) | (None, _) => bound.save(env)?,
        (Some(false), BindMode::Rebind) => bound.rebind_from = Some(stored.to_string()),
        (Some(false), _) => return Err(stored.refusal(&bound.binding)),
    }
    Ok(bound)
}

/// The OneDrive archive, by id (resolving the app folder creates it if missing).
async fn onedrive_binding(env: &Env, sink: &OneDriveSink) -> Result<ArchiveBinding> {
    Ok(ArchiveBinding::OneDrive {
        drive_id: sink.drive_id().await?,
        client_id: client_id(env).to_owned(),
        app_folder_id: sink.root_id().await?.as_str().to_owned(),
    })
}

/// The sentence earlier releases wrote for this archive.
fn legacy_place(env: &Env, binding: &ArchiveBinding) -> String {
    match binding {
        ArchiveBinding::Local { root } => format!("the folder {}", root.display()),
        ArchiveBinding::OneDrive { .. } => {
            format!("the OneDrive app folder of app {}", client_id(env))
        }
    }
}

/// The app registration's client id, as the sign-in settings give it.
fn client_id(env: &Env) -> &str {
    env.sign_in
        .as_ref()
        .and_then(|s| s.ms_client_id.as_deref())
        .unwrap_or("(no MS_CLIENT_ID)")
}

/// What the home says the state is bound to.
enum Stored {
    None,
    Binding(ArchiveBinding),
    Legacy(String),
}

impl Stored {
    fn read(home: &Path) -> Result<Self> {
        let file = home.join(BINDING_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                return serde_json::from_str(&text).map(Self::Binding).map_err(|e| {
                    Error::Config(format!(
                        "{} cannot be read ({e}): restore it, or run `sync --rebind` to bind \
                         this state to the archive given",
                        file.display()
                    ))
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &file, e)),
        }
        let legacy = home.join(LEGACY_FILE);
        match std::fs::read_to_string(&legacy) {
            Ok(text) => Ok(Self::Legacy(text.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::None),
            Err(e) => Err(Error::io("read", &legacy, e)),
        }
    }

    /// Refuses a local folder other than the bound one, or any when bound to OneDrive.
    fn check_kind(&self, binding: &ArchiveBinding) -> Result<()> {
        let same = match self {
            Self::None => true,
            Self::Binding(stored) => stored.same_archive(binding),
            Self::Legacy(place) => *place == format!("{binding}"),
        };
        if same {
            Ok(())
        } else {
            Err(self.refusal(binding))
        }
    }

    /// Refuses OneDrive when bound to a local folder, before any request.
    fn check_kind_onedrive(&self, env: &Env) -> Result<()> {
        let local = match self {
            Self::Binding(stored) => matches!(stored, ArchiveBinding::Local { .. }),
            Self::Legacy(place) => place.starts_with("the folder "),
            Self::None => false,
        };
        if !local {
            return Ok(());
        }
        Err(Error::Config(refusal_text(
            &self.to_string(),
            &legacy_place(
                env,
                &ArchiveBinding::OneDrive {
                    drive_id: String::new(),
                    client_id: client_id(env).to_owned(),
                    app_folder_id: String::new(),
                },
            ),
        )))
    }

    fn refusal(&self, binding: &ArchiveBinding) -> Error {
        Error::Config(refusal_text(&self.to_string(), &binding.to_string()))
    }
}

impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("no archive"),
            Self::Binding(binding) => write!(f, "{binding}"),
            Self::Legacy(place) => f.write_str(place),
        }
    }
}

/// Why a run is refused, and the two ways on.
fn refusal_text(stored: &str, given: &str) -> String {
    format!(
        "this state archives into {stored}, not {given}; its records cannot be read against \
         another archive (every file would look deleted). For a second archive, give it its \
         own state: `RECEIPT_SYNC_HOME=<another folder> qonto-onedrive sync`. To move this \
         state to {given}, run `qonto-onedrive sync --rebind` with the same options: it \
         adopts what is already there and writes the rest; {stored} is left as it is"
    )
}

fn save(home: &Path, binding: &ArchiveBinding) -> Result<()> {
    let file = home.join(BINDING_FILE);
    let text = serde_json::to_string_pretty(binding)
        .map_err(|e| Error::Config(format!("the archive binding: {e}")))?;
    // Through a temporary file and a rename: a crash leaves the old binding or the new.
    let temporary = home.join(format!("{BINDING_FILE}.tmp"));
    std::fs::write(&temporary, format!("{text}\n"))
        .map_err(|e| Error::io("write", &temporary, e))?;
    std::fs::rename(&temporary, &file).map_err(|e| Error::io("write", &file, e))?;
    // The sentence of earlier releases says less, and could disagree after a rebind.
    match std::fs::remove_file(home.join(LEGACY_FILE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", home.join(LEGACY_FILE), e)),
    }
}
