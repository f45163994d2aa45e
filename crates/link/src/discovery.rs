//! DNS-SD advertisement and browsing of signers (`_vmuxsigner._tcp.local.`).
//!
//! The signer advertises one service instance named after its device, with
//! these TXT records:
//!
//! | key    | value                                             |
//! |--------|---------------------------------------------------|
//! | `name` | the device name (the instance label may be cut)   |
//! | `fp`   | the link static key's fingerprint, `SHA256:…`     |
//! | `v`    | the link protocol's major version (`1`)           |
//!
//! Discovery is only a convenience (`--signer HOST:PORT` skips it): what a record claims is not
//! trusted. The fingerprint lets a client prefer the signer it has pinned and
//! show the person which key it is about to pair with; the Noise handshake
//! and the trust store decide whether to talk to it.
//!
//! # Scope: which interfaces mDNS touches
//!
//! mDNS is multicast on the local link, so the daemon has to be told where it
//! may speak. [`Scope`] follows the signer's listen address
//! ([`Scope::for_listen_addr`]):
//!
//! - a loopback address ([`Scope::Loopback`], or [`Scope::Addr`] of another
//!   loopback address) puts the daemon on the loopback interface only, and
//!   the record carries only that loopback address. A signer nobody else can
//!   reach has no business announcing itself on the LAN, and this is what
//!   demos and tests use: no test's mDNS traffic may leave the
//!   machine, so tests run inside a network namespace of their own and, in
//!   addition, restrict the daemon to loopback;
//! - an unspecified address (`0.0.0.0`, `::`) uses every interface
//!   ([`Scope::All`]), and the records carry the addresses of the interface
//!   each answer goes out on;
//! - any other address uses the interface holding that address only, and the
//!   record carries that address.
//!
//! Restricting works by first disabling every interface
//! (`disable_interface(IfKind::All)`) and then enabling the chosen one. Both
//! commands are queued before the `register` or `browse` command and the
//! daemon thread runs its commands in order, so no mDNS query or answer ever
//! goes out on another interface. One caveat of `mdns-sd` 0.21 remains: its
//! thread joins the mDNS multicast group on every interface as it starts,
//! before it reads any command, and leaves it again on the disable (upstream
//! issue keepsimple1/mdns-sd#378, PR #316). The kernel announces such joins
//! and leaves with IGMP/MLD membership reports: measured in a namespace with
//! a veth pair, starting and stopping a loopback-scoped daemon sent a few
//! 54-byte IGMPv3 reports on the veth and nothing else. For a guarantee that
//! not even those leave the machine, run inside a network namespace, as the
//! tests do.
//!
//! On Linux, `lo` has no `MULTICAST` flag by default. `mdns-sd` sends anyway
//! (it sets `IP_MULTICAST_IF` to the interface address and only skips
//! interfaces that are down or point-to-point); the multicast datagrams are
//! looped back to the sockets on this host, which is all loopback needs.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use mdns_sd::{IfKind, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::time::Instant;

use crate::{Error, Fingerprint, Result};

/// The DNS-SD service type signers advertise.
pub const SERVICE_TYPE: &str = "_vmuxsigner._tcp.local.";

/// The protocol major version a signer advertises in its `v` TXT record.
pub const PROTOCOL_MAJOR: u32 = vmux_proto::envelope::PROTOCOL_MAJOR as u32;

/// TXT key of the device name.
const TXT_NAME: &str = "name";
/// TXT key of the static-key fingerprint.
const TXT_FP: &str = "fp";
/// TXT key of the protocol major version.
const TXT_VERSION: &str = "v";

/// Longest DNS label, which bounds the (escaped) instance name.
const MAX_LABEL: usize = 63;
/// Longest device name carried in the TXT record (a TXT string is at most
/// 255 bytes including `name=`).
const MAX_TXT_NAME: usize = 240;

/// Which interfaces mDNS may use. See the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// IPv4 loopback only; the record carries `127.0.0.1`.
    Loopback,
    /// Every interface; the records carry each interface's own addresses.
    All,
    /// The interface holding this address only; the record carries it.
    Addr(IpAddr),
}

impl Scope {
    /// The scope matching a listen address: `127.0.0.1` → [`Scope::Loopback`],
    /// `0.0.0.0` or `::` → [`Scope::All`], anything else (including `::1`
    /// and other loopback addresses, which stay on loopback) →
    /// [`Scope::Addr`].
    pub fn for_listen_addr(addr: &SocketAddr) -> Scope {
        let ip = addr.ip().to_canonical();
        if ip.is_unspecified() {
            Scope::All
        } else if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
            Scope::Loopback
        } else {
            Scope::Addr(ip)
        }
    }

    /// The only interface the daemon may use, or `None` for all of them.
    fn interface(self) -> Option<IfKind> {
        match self {
            Scope::All => None,
            Scope::Loopback => Some(IfKind::LoopbackV4),
            Scope::Addr(IpAddr::V4(ip)) if ip.is_loopback() => Some(IfKind::LoopbackV4),
            Scope::Addr(IpAddr::V6(ip)) if ip.is_loopback() => Some(IfKind::LoopbackV6),
            Scope::Addr(ip) => Some(IfKind::Addr(ip)),
        }
    }

    /// The address put in the record, or `None` for the interfaces' own.
    fn advertised_ip(self) -> Option<IpAddr> {
        match self {
            Scope::All => None,
            Scope::Loopback => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Scope::Addr(ip) => Some(ip),
        }
    }
}

/// A running mDNS daemon, shut down when dropped.
struct Daemon {
    inner: ServiceDaemon,
    stopped: bool,
}

impl Daemon {
    /// Starts a daemon restricted to `scope`.
    fn start(scope: Scope) -> Result<Self> {
        let inner = ServiceDaemon::new().map_err(|e| failed("starting the mDNS daemon", e))?;
        let daemon = Daemon {
            inner,
            stopped: false,
        };
        if let Some(only) = scope.interface() {
            // Order matters: the later selection wins. Both are queued before
            // any command that sends, and the daemon runs commands in order.
            daemon
                .inner
                .disable_interface(IfKind::All)
                .map_err(|e| failed("restricting mDNS", e))?;
            daemon
                .inner
                .enable_interface(only)
                .map_err(|e| failed("restricting mDNS", e))?;
        }
        Ok(daemon)
    }

    /// Shuts the daemon down (sending goodbyes for what it advertises) and
    /// waits, at most `limit`, until it has.
    async fn stop(mut self, limit: Duration) {
        self.stopped = true;
        match self.inner.shutdown() {
            Ok(status) => {
                if tokio::time::timeout(limit, status.recv_async())
                    .await
                    .is_err()
                {
                    tracing::debug!("mDNS daemon did not confirm its shutdown within {limit:?}");
                }
            }
            Err(e) => tracing::debug!("mDNS daemon shutdown: {e}"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        // The daemon thread sends goodbyes for registered services, then
        // exits. Not awaited here; a daemon that already died is fine.
        if let Err(e) = self.inner.shutdown() {
            tracing::debug!("mDNS daemon shutdown: {e}");
        }
    }
}

/// Keeps the advertisement alive; dropping it sends goodbye records and shuts
/// the daemon down, without waiting for either (use [`Advertisement::withdraw`]
/// before the process exits).
pub struct Advertisement {
    daemon: Daemon,
    fullname: String,
    scope: Scope,
}

impl Advertisement {
    /// The DNS-SD instance name, `<device>._vmuxsigner._tcp.local.`.
    pub fn fullname(&self) -> &str {
        &self.fullname
    }

    /// The interfaces it is advertised on.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Withdraws the advertisement: sends the goodbye records and waits (at
    /// most a second) until they are out, so that browsers forget the signer
    /// at once rather than when the records expire.
    pub async fn withdraw(self) {
        self.daemon.stop(Duration::from_secs(1)).await;
    }
}

impl std::fmt::Debug for Advertisement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertisement")
            .field("fullname", &self.fullname)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Advertises a signer named `device_name`, listening on `port`, with the
/// link static key `fingerprint`, on the interfaces of `scope`.
///
/// Returns once the daemon has the registration queued; answering and
/// announcing (after the usual ~750 ms of name probing) happen on the
/// daemon's own thread while the returned [`Advertisement`] lives.
pub fn advertise(
    device_name: &str,
    port: u16,
    fingerprint: &Fingerprint,
    scope: Scope,
) -> Result<Advertisement> {
    let instance = instance_name(device_name);
    let host = host_name(device_name, fingerprint);
    let version = PROTOCOL_MAJOR.to_string();
    let properties = [
        (TXT_NAME, truncate(device_name, MAX_TXT_NAME)),
        (TXT_FP, fingerprint.as_str()),
        (TXT_VERSION, version.as_str()),
    ];
    let addresses: Vec<IpAddr> = scope.advertised_ip().into_iter().collect();
    let mut info = ServiceInfo::new(
        SERVICE_TYPE,
        &instance,
        &host,
        addresses.as_slice(),
        port,
        &properties[..],
    )
    .map_err(|e| failed("building the service record", e))?;
    if let Some(only) = scope.interface() {
        info.set_interfaces(vec![only]);
    } else {
        info = info.enable_addr_auto();
    }
    let fullname = info.get_fullname().to_owned();

    let daemon = Daemon::start(scope)?;
    daemon
        .inner
        .register(info)
        .map_err(|e| failed("registering the service", e))?;
    tracing::debug!(%fullname, ?scope, port, "advertising signer");
    Ok(Advertisement {
        daemon,
        fullname,
        scope,
    })
}

/// A signer seen on the network.
#[derive(Clone, Debug)]
pub struct FoundSigner {
    /// The device name from the `name` TXT record (else the instance name).
    pub name: String,
    /// The fingerprint from the `fp` TXT record. Unverified until the
    /// handshake presents the matching key.
    pub fingerprint: Fingerprint,
    /// The `v` TXT record; 0 if absent or not a number. It may differ from
    /// [`PROTOCOL_MAJOR`]: the caller decides what to do with it.
    pub version: u32,
    /// Where it listens: IPv4 first, then IPv6 (link-local ones with their
    /// scope id set).
    pub addresses: Vec<SocketAddr>,
}

/// Browses on the interfaces of `scope` for at most `wait`.
///
/// Returns as soon as a signer whose fingerprint is in `preferred` is
/// resolved; otherwise, at the deadline, every signer seen. Either way
/// signers in `preferred` come first (in the order of `preferred`), the
/// others sorted by name. Records without a usable `fp` are skipped; records
/// with an unknown `v` are kept.
pub async fn browse(
    scope: Scope,
    preferred: &[Fingerprint],
    wait: Duration,
) -> Result<Vec<FoundSigner>> {
    let deadline = Instant::now() + wait;
    let daemon = Daemon::start(scope)?;
    let events = daemon
        .inner
        .browse(SERVICE_TYPE)
        .map_err(|e| failed("starting to browse", e))?;

    // By instance full name: a later resolution of an instance replaces
    // the earlier one.
    let mut seen: HashMap<String, FoundSigner> = HashMap::new();
    loop {
        let event = match tokio::time::timeout_at(deadline, events.recv_async()).await {
            Err(_elapsed) => break,
            Ok(Ok(event)) => event,
            Ok(Err(_disconnected)) => {
                if seen.is_empty() {
                    return Err(Error::Discovery(
                        "the mDNS daemon stopped while browsing".into(),
                    ));
                }
                break;
            }
        };
        match event {
            ServiceEvent::ServiceResolved(service) => {
                let found = match found_signer(&service) {
                    Ok(found) => found,
                    Err(why) => {
                        let fullname = vmux_proto::text::escape(&service.fullname);
                        tracing::debug!(%fullname, "ignoring a signer record: {why}");
                        continue;
                    }
                };
                let is_preferred = preferred.contains(&found.fingerprint);
                seen.insert(service.fullname.to_lowercase(), found);
                if is_preferred {
                    break;
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                seen.remove(&fullname.to_lowercase());
            }
            _ => {}
        }
    }
    if let Err(e) = daemon.inner.stop_browse(SERVICE_TYPE) {
        tracing::debug!("mDNS stop browse: {e}");
    }
    drop(daemon);

    let mut found: Vec<FoundSigner> = seen.into_values().collect();
    sort(&mut found, preferred);
    Ok(found)
}

/// Preferred signers first, in the order of `preferred`, then by name.
fn sort(found: &mut [FoundSigner], preferred: &[Fingerprint]) {
    let rank = |f: &FoundSigner| {
        preferred
            .iter()
            .position(|p| *p == f.fingerprint)
            .unwrap_or(usize::MAX)
    };
    found.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.addresses.cmp(&b.addresses))
    });
}

/// Reads a resolved instance; why not, when it is unusable.
fn found_signer(service: &ResolvedService) -> Result<FoundSigner, String> {
    let mut addresses: Vec<SocketAddr> = service
        .get_addresses()
        .iter()
        .map(|ip| socket_addr(ip, service.get_port()))
        .collect();
    addresses.sort_by_key(|a| (a.is_ipv6(), is_link_local(a), *a));
    addresses.dedup();
    let txt = |key| service.get_property_val_str(key);
    signer_record(
        &service.fullname,
        txt(TXT_NAME),
        txt(TXT_FP),
        txt(TXT_VERSION),
        addresses,
    )
}

/// A signer from what its record says. Anyone on the link can advertise,
/// and the name and fingerprint are printed to the person, so they are held
/// to the rules of the wire: a name without control or format characters
/// and no longer than a device name may be, a fingerprint that is only
/// `SHA256:` and base64.
fn signer_record(
    fullname: &str,
    name: Option<&str>,
    fp: Option<&str>,
    version: Option<&str>,
    addresses: Vec<SocketAddr>,
) -> Result<FoundSigner, String> {
    let fp = fp.map(str::trim).unwrap_or_default();
    let digest = fp.strip_prefix("SHA256:").unwrap_or_default();
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    if digest.is_empty() || digest.len() > 64 || !digest.chars().all(base64) {
        return Err("no usable fingerprint".into());
    }
    let name = match name {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => instance_of(fullname),
    };
    let max = vmux_proto::envelope::limits::MAX_DEVICE_NAME_LEN;
    if let Err(c) = vmux_proto::text::check(&name) {
        return Err(format!(
            "its name holds the control or format character {}",
            vmux_proto::text::describe(c)
        ));
    }
    if name.len() > max {
        return Err(format!("its name is {} bytes, over {max}", name.len()));
    }
    let version = version.and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    Ok(FoundSigner {
        name,
        fingerprint: Fingerprint::from_string(fp.to_owned()),
        version,
        addresses,
    })
}

fn socket_addr(ip: &ScopedIp, port: u16) -> SocketAddr {
    match ip {
        ScopedIp::V6(v6) if v6.addr().is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(*v6.addr(), port, 0, v6.scope_id().index))
        }
        other => SocketAddr::new(other.to_ip_addr(), port),
    }
}

fn is_link_local(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_link_local(),
        IpAddr::V6(ip) => ip.is_unicast_link_local(),
    }
}

/// The instance label of `fullname`, unescaped.
fn instance_of(fullname: &str) -> String {
    let suffix = format!(".{SERVICE_TYPE}");
    let escaped = fullname
        .len()
        .checked_sub(suffix.len())
        .filter(|&end| {
            fullname
                .get(end..)
                .is_some_and(|s| s.eq_ignore_ascii_case(&suffix))
        })
        .and_then(|end| fullname.get(..end))
        .unwrap_or(fullname);
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// The device name cut so that its escaped form fits one DNS label.
fn instance_name(device_name: &str) -> String {
    let mut name = String::new();
    let mut escaped_len = 0;
    for c in device_name.chars() {
        let len = c.len_utf8() + usize::from(c == '.' || c == '\\');
        if escaped_len + len > MAX_LABEL {
            break;
        }
        escaped_len += len;
        name.push(c);
    }
    if name.trim().is_empty() {
        "vmux signer".to_owned()
    } else {
        name
    }
}

/// A host name for the A/AAAA records: `vmux-<device>-<fingerprint bits>.local.`,
/// so that two signers with the same device name don't claim the same host.
fn host_name(device_name: &str, fingerprint: &Fingerprint) -> String {
    let mut label = String::from("vmux-");
    for c in device_name.chars() {
        if label.len() >= 40 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            label.push(c.to_ascii_lowercase());
        } else if !label.ends_with('-') {
            label.push('-');
        }
    }
    if !label.ends_with('-') {
        label.push('-');
    }
    let digest = fingerprint.as_str().trim_start_matches("SHA256:");
    label.extend(
        digest
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .take(8),
    );
    let label = label.trim_end_matches('-');
    format!("{label}.local.")
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn failed(what: &str, e: impl Display) -> Error {
    Error::Discovery(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests;
