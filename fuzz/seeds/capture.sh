#!/usr/bin/env bash
# Captures real OpenSSH agent traffic for the seed corpora: a real sshd on
# 127.0.0.1, real ssh/ssh-add/ssh-keygen clients, and a real ssh-agent behind
# the fixture proxy (crates/proto/tests/fixtures/agent/capture.py), which
# logs every message body. Output: OUT_DIR/capture.jsonl, the keys used, and
# OpenSSH private-key files for the key_import corpus. Loopback only.
# Usage: fuzz/seeds/capture.sh OUT_DIR
set -euo pipefail
out=$(realpath -m "$1")
here=$(cd "$(dirname "$0")" && pwd)
proxy_py="$here/../../crates/proto/tests/fixtures/agent/capture.py"
mkdir -p "$out"
d=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$d"; }
trap cleanup EXIT

wait_for() { # path
    for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done
    echo "timed out waiting for $1" >&2; return 1
}

for t in ed25519 ecdsa rsa; do
    ssh-keygen -q -t "$t" -N '' -C "vmux-fuzz-$t" -f "$d/id_$t"
    ssh-keygen -q -t "$t" -N '' -f "$d/host_$t"
done
# Private-key files as `vmux key import` reads them, plain and encrypted.
for t in ed25519 ecdsa rsa; do
    cp "$d/id_$t" "$out/key-$t"
    cp "$d/id_$t" "$d/enc_$t"
    ssh-keygen -q -p -N hunter2 -f "$d/enc_$t" >/dev/null
    cp "$d/enc_$t" "$out/key-$t-encrypted"
done
cat "$d"/id_*.pub > "$d/authorized_keys"

mkdir -p /run/sshd
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$d/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
HostKey $d/host_ecdsa
HostKey $d/host_rsa
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowAgentForwarding yes
CONF
/usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$d/sshd.log" &
pids+=($!)
ssh-agent -D -a "$d/agent.sock" >/dev/null &
pids+=($!)
wait_for "$d/agent.sock"
for t in ed25519 ecdsa rsa; do SSH_AUTH_SOCK="$d/agent.sock" ssh-add -q "$d/id_$t"; done
rm -f "$out/capture.jsonl"
python3 "$proxy_py" proxy "$d/agent.sock" "$d/proxy.sock" "$out/capture.jsonl" &
pids+=($!)
wait_for "$d/proxy.sock"
for _ in $(seq 200); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
    sleep 0.05
done

export SSH_AUTH_SOCK="$d/proxy.sock"
opts=(-F /dev/null -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
      -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10)
user=$(id -un)
# One login per (host key, user key): session-bind with each host-key type,
# then a publickey-hostbound userauth sign request with each user key.
for hk in ssh-ed25519 ecdsa-sha2-nistp256 rsa-sha2-512; do
    for t in ed25519 ecdsa rsa; do
        ssh "${opts[@]}" -o "HostKeyAlgorithms=$hk" -o "IdentityFile=$d/id_$t.pub" "$user@127.0.0.1" true
    done
done
# The plain "publickey" method (no host key in the signed data).
ssh "${opts[@]}" -o PubkeyAuthentication=unbound -o "IdentityFile=$d/id_ed25519.pub" "$user@127.0.0.1" true 2>/dev/null \
    || ssh "${opts[@]}" -o "IdentityFile=$d/id_ed25519.pub" -o 'PubkeyAcceptedAlgorithms=ssh-ed25519' "$user@127.0.0.1" true
# A forwarded agent: the remote ssh-add -l binds with is_forwarding set.
ssh "${opts[@]}" -A -o "IdentityFile=$d/id_ecdsa.pub" "$user@127.0.0.1" 'ssh-add -l >/dev/null'
# SSHSIG: file and git namespaces, each key type.
echo "hello vmux" > "$d/msg.txt"
for t in ed25519 ecdsa rsa; do
    ssh-keygen -q -Y sign -n file -f "$d/id_$t.pub" "$d/msg.txt" >/dev/null
    ssh-keygen -q -Y sign -n git -f "$d/id_$t.pub" "$d/msg.txt" >/dev/null
    rm -f "$d/msg.txt.sig"
done
# The public keys, for the keys-cache and identities seeds.
ssh-add -L > "$out/identities.pub"
echo "captured $(wc -l < "$out/capture.jsonl") messages into $out/capture.jsonl"
