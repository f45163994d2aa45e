//! What the signer keeps between runs in `signer.json`: the port it
//! listened on, so that a restart is found where it was, and the wake
//! endpoint it tells its devices. A person may edit the file (it is the
//! signer's config); `vmux signer --listen` and `--wake-url` write it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use vmux_link::home::{Home, StateFile};
use vmux_link::{Error, Result};

/// The file in the signer's state directory: a port and a URL.
pub const SETTINGS_FILE: StateFile = StateFile::new("signer.json", 64 << 10);
/// The port a signer listens on when none was given and none was used
/// before (or that one is taken): fixed, so devices find it where it was.
pub const DEFAULT_PORT: u16 = 7390;

/// The signer's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The port listened on last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The push endpoint sent to devices in `deviceTokenUpdate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_url: Option<String>,
}

impl Settings {
    fn path(home: &Home) -> PathBuf {
        SETTINGS_FILE.path(home)
    }

    /// The settings in `home`; none yet is the default.
    pub fn load(home: &Home) -> Result<Self> {
        let path = Self::path(home);
        match SETTINGS_FILE.read_at(&path)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path,
                reason: e.to_string(),
            }),
            None => Ok(Self::default()),
        }
    }

    /// Writes the settings, 0600.
    pub fn save(&self, home: &Home) -> Result<()> {
        let path = Self::path(home);
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(SETTINGS_FILE.write_at(&path, &json)?)
    }

    /// The wake endpoint, if one is set.
    pub fn wake_url(&self) -> Option<&str> {
        self.wake_url.as_deref().filter(|u| !u.is_empty())
    }
}

/// Listens on `host`, at `port` if given (0: any free port), else at the
/// port used last, else at [`DEFAULT_PORT`], else at any free port; and
/// remembers the port in `settings`. A given port that is taken is an
/// error; the fallbacks say which port they moved to.
pub async fn listen(
    host: IpAddr,
    port: Option<u16>,
    settings: &mut Settings,
) -> io::Result<TcpListener> {
    let listener = match port {
        Some(port) => TcpListener::bind(SocketAddr::new(host, port)).await?,
        None => {
            let mut tried = Vec::new();
            let mut bound = None;
            for port in settings.port.into_iter().chain([DEFAULT_PORT]) {
                if tried.contains(&port) {
                    continue;
                }
                tried.push(port);
                match TcpListener::bind(SocketAddr::new(host, port)).await {
                    Ok(l) => {
                        bound = Some(l);
                        break;
                    }
                    Err(e) => tracing::warn!("port {port} is not free ({e})"),
                }
            }
            match bound {
                Some(l) => l,
                None => {
                    let l = TcpListener::bind(SocketAddr::new(host, 0)).await?;
                    tracing::warn!(
                        "listening on port {} instead: paired devices look for this signer by DNS-SD \
                         (or give them `--signer HOST:PORT`); choose a port with --listen",
                        l.local_addr()?.port()
                    );
                    l
                }
            }
        }
    };
    settings.port = Some(listener.local_addr()?.port());
    Ok(listener)
}

/// `HOST` or `HOST:PORT`, as `--listen` takes it.
pub fn parse_listen(text: &str) -> std::result::Result<(IpAddr, Option<u16>), String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok((addr.ip(), Some(addr.port())));
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().map(|ip| (ip, None)).map_err(|_| {
        format!(
            "{text:?} is not an address: give HOST or HOST:PORT, e.g. 0.0.0.0 or 192.0.2.7:7390"
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn listen_addresses_with_and_without_port() {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert_eq!(parse_listen("0.0.0.0"), Ok((any, None)));
        assert_eq!(parse_listen("0.0.0.0:0"), Ok((any, Some(0))));
        assert_eq!(
            parse_listen("[::1]:7"),
            Ok(("::1".parse().unwrap(), Some(7)))
        );
        assert_eq!(parse_listen("::"), Ok(("::".parse().unwrap(), None)));
        assert!(parse_listen("phone:1").is_err());
    }

    #[tokio::test]
    async fn the_port_used_last_is_used_again_else_the_default_else_any() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut settings = Settings::default();
        // Given: exactly that one, remembered.
        let given = listen(lo, Some(0), &mut settings).await.unwrap();
        let port = given.local_addr().unwrap().port();
        assert_eq!(settings.port, Some(port));
        drop(given);
        let again = listen(lo, None, &mut settings).await.unwrap();
        assert_eq!(again.local_addr().unwrap().port(), port);
        // Taken: a given port is an error, a remembered one moves on.
        assert!(listen(lo, Some(port), &mut settings).await.is_err());
        let moved = listen(lo, None, &mut settings).await.unwrap();
        assert_ne!(moved.local_addr().unwrap().port(), port);
        assert_eq!(settings.port, Some(moved.local_addr().unwrap().port()));
    }
}
