//! The host an `ssh` client connected to, as its person typed it: read
//! from the client's own arguments (`/proc/PID/cmdline` of the socket's
//! peer), so that a host whose known_hosts line is hashed, or not yet
//! written, still gets a name on the sheet. It travels as a claim, like
//! every name the agent sends; the signer labels it so.

use std::io::Read;

use vmux_hostkey::known_hosts::lookup_name;

/// Most of a client's command line read: ssh's are short.
const MAX_CMDLINE_LEN: u64 = 16 * 1024;

/// ssh's options that take an argument (`ssh(1)`, OpenSSH 9).
const WITH_ARGUMENT: &str = "BbcDEeFIiJLlmOoPpQRSWw";

/// The lookup name (`host`, or `[host]:port` off port 22) of the host the
/// `ssh` client with process id `pid` connected to; `None` when the peer
/// is not `ssh` or its destination cannot be read.
pub fn of_pid(pid: i32) -> Option<String> {
    let file = std::fs::File::open(format!("/proc/{pid}/cmdline")).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_CMDLINE_LEN).read_to_end(&mut bytes).ok()?;
    let args: Vec<String> = bytes
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    destination(&args)
}

/// The lookup name of the destination in `ssh`'s arguments `args`
/// (`args[0]` the program).
pub fn destination(args: &[String]) -> Option<String> {
    let program = args.first()?;
    if program.rsplit('/').next() != Some("ssh") {
        return None;
    }
    let mut port = None;
    let mut rest = args.iter().skip(1);
    let target = loop {
        let arg = rest.next()?;
        if arg == "--" {
            break rest.next()?;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            break arg;
        };
        // Flags may be bunched (`-vvp 2222`); the first that takes an
        // argument takes the rest of the word, or the next one.
        for (i, flag) in flags.char_indices() {
            if !WITH_ARGUMENT.contains(flag) {
                continue;
            }
            let inline = &flags[i + flag.len_utf8()..];
            let value = if inline.is_empty() {
                rest.next()?.as_str()
            } else {
                inline
            };
            match flag {
                'p' => port = value.parse().ok(),
                'o' => port = port_option(value).or(port),
                _ => {}
            }
            break;
        }
    };
    let (host, uri_port) = host_of(target)?;
    let name = lookup_name(host, uri_port.or(port).unwrap_or(22));
    (name.len() <= 255 && vmux_proto::text::check(&name).is_ok()).then_some(name)
}

/// The port of `-o Port=N` (or `Port N`), any case.
fn port_option(option: &str) -> Option<u16> {
    let (key, value) = option
        .split_once('=')
        .or_else(|| option.split_once(char::is_whitespace))?;
    key.trim()
        .eq_ignore_ascii_case("port")
        .then(|| value.trim().parse().ok())?
}

/// The host (and port) of `[user@]host` or `ssh://[user@]host[:port]`.
fn host_of(target: &str) -> Option<(&str, Option<u16>)> {
    if let Some(uri) = target.strip_prefix("ssh://") {
        let authority = uri.split('/').next()?;
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                (host, after.strip_prefix(':'))
            }
            None => match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            },
        };
        let port = port.map(str::parse).transpose().ok()?;
        return (!host.is_empty()).then_some((host, port));
    }
    let host = target.rsplit_once('@').map_or(target, |(_, h)| h);
    (!host.is_empty()).then_some((host, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(line: &str) -> Option<String> {
        let args: Vec<String> = line.split(' ').map(str::to_owned).collect();
        destination(&args)
    }

    #[test]
    fn the_destination_is_read_as_ssh_reads_it() {
        assert_eq!(dest("ssh prod").as_deref(), Some("prod"));
        assert_eq!(
            dest("/usr/bin/ssh -v root@db.corp uptime").as_deref(),
            Some("db.corp")
        );
        assert_eq!(
            dest("ssh -F /dev/null -p 2222 -o BatchMode=yes me@127.0.0.1 echo hi").as_deref(),
            Some("[127.0.0.1]:2222")
        );
        assert_eq!(dest("ssh -vvp2200 web").as_deref(), Some("[web]:2200"));
        assert_eq!(
            dest("ssh -oPort=2201 -l me web").as_deref(),
            Some("[web]:2201")
        );
        assert_eq!(
            dest("ssh ssh://me@[::1]:2203/").as_deref(),
            Some("[::1]:2203")
        );
        assert_eq!(dest("ssh ssh://web:22").as_deref(), Some("web"));
        assert_eq!(dest("ssh -- git@github.com").as_deref(), Some("github.com"));
        // Not ssh, or no destination: nothing claimed.
        assert_eq!(dest("ssh-keygen -Y sign -f key"), None);
        assert_eq!(dest("ssh -p 2222"), None);
        assert_eq!(dest("ssh bad\u{1b}[2Jname"), None);
    }
}
