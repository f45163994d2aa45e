//! `vmux key`: the signer's identities (create, import, list, show, enable,
//! disable, remove, policy).

use std::path::PathBuf;

use vmux_keys::keyring::Store;
use vmux_keys::pkcs11::Curve;
use vmux_keys::store::Provider;
use vmux_keys::{Identity, KeyType, Keyring};
use vmux_link::home::Home;

use super::Result;

mod policy;
pub mod prompt;

const SECRET_HELP: &str = "\
The passphrase (or token PIN) is typed twice without echo when stdin is a terminal.
Otherwise it is read from the VMUX_PASSPHRASE environment variable if set,
else from the first line of stdin (for scripts and tests).";

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create an identity: a new key pair, in a passphrase-encrypted file or on a token.
    #[command(after_help = SECRET_HELP)]
    New(NewArgs),
    /// Import an OpenSSH private key file (stored encrypted; asks for its passphrase,
    /// or for a new one when the file has none).
    #[command(after_help = SECRET_HELP)]
    Import {
        /// The private key file, e.g. ~/.ssh/id_ed25519.
        path: PathBuf,
        /// Identity name (default: the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List identities.
    List,
    /// Show an identity's fingerprint and authorized_keys line.
    Show {
        /// Identity name.
        name: String,
    },
    /// Offer an identity to devices again.
    Enable {
        /// Identity name.
        name: String,
    },
    /// Stop offering an identity (it stays stored).
    Disable {
        /// Identity name.
        name: String,
    },
    /// Remove an identity and delete its key file (token keys stay on the token).
    Remove {
        /// Identity name.
        name: String,
    },
    /// Limit where and what an identity signs; the signer refuses anything
    /// else at once (`policyDenied`), without a sheet. No flags: show it.
    Policy(policy::Args),
}

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// Identity name: letters, digits, '-', '_', '.', '@'.
    name: String,
    /// Key type (tokens make ecdsa or, where they can, ed25519; the TPM ecdsa).
    #[arg(long = "type", value_enum, default_value_t)]
    kind: TypeArg,
    /// Where the private key lives.
    #[arg(long, value_enum, default_value_t)]
    store: StoreArg,
    /// PKCS#11 module (shared library): for --store pkcs11; for --store tpm
    /// when tpm2-pkcs11 is not where the distribution puts it.
    #[arg(long, required_if_eq("store", "pkcs11"))]
    module: Option<PathBuf>,
    /// Token label, for --store pkcs11.
    #[arg(long, required_if_eq("store", "pkcs11"))]
    token: Option<String>,
    /// Label of the key objects on the token (default: NAME).
    #[arg(long)]
    key_label: Option<String>,
    /// Use a key pair already on the token instead of generating one.
    #[arg(long, requires = "module")]
    existing: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
enum TypeArg {
    /// ecdsa-sha2-nistp256.
    #[default]
    Ecdsa,
    /// ssh-ed25519.
    Ed25519,
    /// RSA 3072 (signs with rsa-sha2-256/512).
    Rsa,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
enum StoreArg {
    /// Passphrase-encrypted OpenSSH file in the state dir.
    #[default]
    Software,
    /// PKCS#11 token (YubiKey, SoftHSM2, ...).
    Pkcs11,
    /// This machine's TPM 2.0, through tpm2-pkcs11 (P-256; the PIN is asked
    /// at each signature and checked by the TPM).
    Tpm,
}

pub fn run(command: Command) -> Result {
    let home = Home::from_env()?;
    let mut ring = Keyring::load(&home)?;
    match command {
        Command::New(args) => {
            let identity = new(&mut ring, args)?;
            outln!(
                "Created identity \"{}\" ({}, {}).",
                identity.name,
                identity.algorithm,
                identity.store_kind()
            )?;
            print_key(&identity)?;
        }
        Command::Import { path, name } => {
            let name = match name {
                Some(name) => name,
                None => default_name(&path)?,
            };
            let pem = zeroize::Zeroizing::new(
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            );
            let passphrase = if vmux_keys::keyring::is_encrypted(&pem)? {
                prompt::secret(&format!("Passphrase of {}: ", path.display()), false)?
            } else {
                errln!(
                    "{} is not encrypted; vmux stores it encrypted with a new passphrase.",
                    path.display()
                );
                prompt::secret(&format!("New passphrase for \"{name}\": "), true)?
            };
            let identity = ring.import_software(&name, &pem, &passphrase)?.clone();
            outln!(
                "Imported identity \"{}\" ({}).",
                identity.name,
                identity.algorithm
            )?;
            print_key(&identity)?;
        }
        Command::List => list(ring.list())?,
        Command::Show { name } => {
            let identity = ring.get(&name)?;
            outln!("Name:        {}", identity.name)?;
            outln!("Type:        {}", identity.algorithm)?;
            outln!("Store:       {}", store_detail(identity))?;
            outln!("Provider:    {}", provider_kind(identity))?;
            outln!(
                "Enabled:     {}",
                if identity.enabled { "yes" } else { "no" }
            )?;
            print_key(identity)?;
        }
        Command::Enable { name } => {
            ring.set_enabled(&name, true)?;
            outln!("Enabled \"{name}\".")?;
        }
        Command::Disable { name } => {
            ring.set_enabled(&name, false)?;
            outln!(
                "Disabled \"{name}\"; devices no longer see it. `vmux key enable {name}` brings it back."
            )?;
        }
        Command::Policy(args) => policy::run(&home, &ring, args)?,
        Command::Remove { name } => {
            let removed = ring.remove(&name)?;
            match removed.store {
                Store::Software { .. } => outln!("Removed \"{name}\" and deleted its key file.")?,
                Store::Pkcs11(_) => {
                    outln!("Removed \"{name}\"; its key pair is still on the token.")?
                }
                Store::Tpm(t) => outln!(
                    "Removed \"{name}\"; its TPM token stays in tpm2-pkcs11's store until \
                     `tpm2_ptool rmtoken --label {}`.",
                    t.token_label
                )?,
            }
        }
    }
    Ok(())
}

fn new(ring: &mut Keyring, args: NewArgs) -> Result<Identity> {
    let NewArgs {
        name,
        kind,
        store,
        module,
        token,
        key_label,
        existing,
    } = args;
    vmux_keys::keyring::check_name(&name)?;
    match store {
        StoreArg::Software => {
            if existing || module.is_some() || token.is_some() || key_label.is_some() {
                return Err(
                    "--module, --token, --key-label and --existing go with --store pkcs11".into(),
                );
            }
            let kind = match kind {
                TypeArg::Ecdsa => KeyType::Ecdsa,
                TypeArg::Ed25519 => KeyType::Ed25519,
                TypeArg::Rsa => KeyType::Rsa,
            };
            let passphrase = prompt::secret(&format!("New passphrase for \"{name}\": "), true)?;
            Ok(ring.create_software(&name, kind, &passphrase)?.clone())
        }
        StoreArg::Tpm => {
            if existing || token.is_some() || key_label.is_some() {
                return Err(
                    "--token, --key-label and --existing go with --store pkcs11; \
                            each TPM identity gets a token of its own"
                        .into(),
                );
            }
            if kind != TypeArg::Ecdsa {
                return Err("TPM keys are ecdsa (P-256, what TPM 2.0 signs); drop --type".into());
            }
            let module = vmux_keys::tpm::module_or_installed(module.as_deref())?;
            // Fail on a too-long name before asking for anything.
            vmux_keys::tpm::token_label(&name)?;
            let pin = prompt::secret(
                &format!("New PIN for \"{name}\" (the TPM checks it at each signature): "),
                true,
            )?;
            Ok(ring.create_in_tpm(&name, &module, &pin)?.clone())
        }
        StoreArg::Pkcs11 => {
            let curve = match kind {
                TypeArg::Ecdsa => Curve::P256,
                TypeArg::Ed25519 => Curve::Ed25519,
                TypeArg::Rsa => {
                    return Err("token keys are ecdsa (P-256) or ed25519; \
                                use --store software for RSA"
                        .into());
                }
            };
            let (Some(module), Some(token)) = (module, token) else {
                return Err("--store pkcs11 needs --module PATH and --token LABEL".into());
            };
            let key_label = key_label.unwrap_or_else(|| name.clone());
            let ask_pin = || prompt::secret(&format!("PIN of token \"{token}\": "), false);
            if existing {
                // Most tokens show public keys without a PIN; some only after it.
                let added = ring.add_from_token(&name, &module, &token, &key_label, None);
                let identity = match added {
                    Err(vmux_keys::Error::PinNeeded) => {
                        let pin = ask_pin()?;
                        ring.add_from_token(&name, &module, &token, &key_label, Some(&pin))?
                    }
                    other => other?,
                };
                return Ok(identity.clone());
            }
            let pin = ask_pin()?;
            Ok(ring
                .generate_on_token(&name, &module, &token, &key_label, &pin, curve)?
                .clone())
        }
    }
}

fn default_name(path: &std::path::Path) -> Result<String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if vmux_keys::keyring::check_name(stem).is_err() {
        return Err(format!(
            "cannot name the identity after \"{}\"; give one with --name NAME",
            path.display()
        )
        .into());
    }
    Ok(stem.to_owned())
}

fn print_key(identity: &Identity) -> std::io::Result<()> {
    outln!("Fingerprint: {}", identity.fingerprint)?;
    outln!("authorized_keys line:")?;
    outln!("{}", identity.authorized_keys_line())
}

fn store_detail(identity: &Identity) -> String {
    match &identity.store {
        Store::Software { file } => format!("software (keys/{file}, passphrase-encrypted)"),
        Store::Pkcs11(t) => format!(
            "pkcs11 (token \"{}\", key \"{}\", module {})",
            t.token_label,
            t.key_label,
            t.module.display()
        ),
        Store::Tpm(t) => format!(
            "tpm (tpm2-pkcs11 token \"{}\", module {})",
            t.token_label,
            t.module.display()
        ),
    }
}

/// The envelope's `providerKind` of the identity's key.
fn provider_kind(identity: &Identity) -> &'static str {
    match identity.provider() {
        Provider::Software => "software",
        Provider::HardwareToken => "hardwareToken",
    }
}

fn list(identities: &[Identity]) -> std::io::Result<()> {
    if identities.is_empty() {
        return outln!(
            "No identities. Make one with `vmux key new NAME` or `vmux key import ~/.ssh/id_ed25519`."
        );
    }
    let rows: Vec<[&str; 6]> = identities
        .iter()
        .map(|i| {
            [
                i.name.as_str(),
                i.algorithm.as_str(),
                i.fingerprint.as_str(),
                i.store_kind(),
                provider_kind(i),
                if i.enabled { "yes" } else { "no" },
            ]
        })
        .collect();
    let header = [
        "NAME",
        "TYPE",
        "FINGERPRINT",
        "STORE",
        "PROVIDER",
        "ENABLED",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        outln!("{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}
