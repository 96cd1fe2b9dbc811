//! A member's identity on disk: `$XDG_DATA_HOME/mqttchat/identity` (by default
//! `~/.local/share/mqttchat/identity`), made on first use in an encrypted room, or the
//! file `--identity-file` names. The file is an Ed25519 private key in PEM (PKCS#8), as
//! `openssl genpkey -algorithm ed25519` writes it, mode 0600 in a 0700 folder.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::cli::Common;
use crate::error::Error;
use crate::room::sign::Identity;
use crate::tools::options::read_zeroized;

/// `$XDG_DATA_HOME/mqttchat`, else `~/.local/share/mqttchat`.
pub fn data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("mqttchat"))
}

/// The identity of `--identity-file`, else the default one, made if there is none yet.
pub fn load(common: &Common) -> Result<Identity, Error> {
    match &common.identity_file {
        Some(path) => read(path, "--identity-file"),
        None => {
            let dir = data_dir().ok_or_else(|| {
                Error::Usage(
                    "no place for your identity: set HOME or XDG_DATA_HOME, or give \
                     --identity-file"
                        .into(),
                )
            })?;
            load_or_make(&dir.join("identity"))
        }
    }
}

/// `--fingerprint`: prints the identity's fingerprint (making the default identity if
/// there is none yet).
pub fn print_fingerprint(common: &Common) -> Result<(), Error> {
    let identity = load(common)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", identity.fingerprint())
        .and_then(|()| out.flush())
        .map_err(|e| Error::Failed(format!("cannot write to stdout: {e}")))
}

/// Reads an identity file: one open, its mode checked on that handle (a warning when
/// group or others may read it, as for the room secret), its bytes read into a buffer
/// that is zeroed afterwards and never grows.
fn read(path: &Path, what: &str) -> Result<Identity, Error> {
    let bad = |why: String| Error::Usage(format!("{what} {}: {why}", path.display()));
    // Not blocked by a FIFO in its place: the type is checked on the handle.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| bad(e.to_string()))?;
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a file".into()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        log::warn!(
            "{what} {} can be read by group or others; keep it private (chmod 600)",
            path.display()
        );
    }
    // A PEM of an Ed25519 key is 119 bytes; anything much longer is not one.
    let bytes = read_zeroized(&mut file, 4096, false).map_err(|e| bad(e.to_string()))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not text".into()))?;
    Identity::from_pem(text).map_err(|e| bad(e.to_string()))
}

/// The default identity: read, or made and written for the first time. Two runs making
/// it at once agree on one (the file appears whole, by a link that fails if it exists).
fn load_or_make(path: &Path) -> Result<Identity, Error> {
    match fs::symlink_metadata(path) {
        Ok(_) => return read(path, "your identity"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::Usage(format!(
                "your identity {}: {e}",
                path.display()
            )));
        }
    }
    let cannot = |e: std::io::Error| {
        Error::Failed(format!(
            "cannot write your identity {}: {e}",
            path.display()
        ))
    };
    let dir = path.parent().expect("a file in a folder");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(cannot)?;
    let identity = Identity::generate().map_err(Error::Failed)?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| Error::Failed(e.to_string()))?;
    let tmp = dir.join(format!(
        ".identity.{}.{}",
        std::process::id(),
        u64::from_ne_bytes(nonce)
    ));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(identity.to_pem().as_bytes())?;
        f.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            crate::tool::say(format_args!(
                "made your identity {} (fingerprint {}); members check it with \
                 --fingerprint",
                path.display(),
                identity.fingerprint()
            ));
            Ok(identity)
        }
        // Another run made it first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path, "your identity"),
        Err(e) => Err(cannot(e)),
    }
}
