//! A private network of test hosts built from Linux network namespaces, for fault
//! injection: partitions between hosts, all undone on drop.
//!
//! Layout: a "switch" namespace holds a bridge; every host namespace joins it through a
//! veth pair (`eth0` inside the host), and one more veth pair joins the root namespace, so
//! the harness (and the clients it runs) reaches every host directly on one /24.
//!
//! Partitions are routes, not filters: this kernel has no netem, u32, flower or matchall,
//! but a `blackhole` route for a peer's /32 in a host's namespace drops every packet that
//! host sends to that peer (local senders see `EINVAL` on a new `connect`, and an
//! established TCP connection just stops delivering). Putting the route in both hosts cuts
//! both directions while each stays reachable from the root side (.1); deleting the routes
//! heals, and stalled TCP connections resume at their next retransmission (exponential
//! backoff, so after a long partition that can take a while). An application that only
//! notices a partition by its own pings may take long (NATS: 33–74 s); the kernel's
//! `net.ipv4.tcp_retries2` (lowered to 3 in a host, it timed such connections out in
//! ~3 s) is left at its default.
//!
//! Names carry the pid (`mqc{pid}s`, `mqc{pid}h{i}`, root veth `mqc{pid}r`) and the subnet
//! (a /24 of 198.18.0.0/15) is derived from it, so concurrent runs do not collide;
//! [`Lab::cleanup_stale`] removes what a dead run (panic, SIGKILL) left behind, and
//! [`Lab::create`] calls it first.
//! Everything is driven through iproute2's `ip`.

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Prefix of every namespace and root-side interface a lab creates.
const PREFIX: &str = "mqc";

/// Set while a [`Lab`] exists: names and subnet come from the pid, so one at a time.
static LIVE: AtomicBool = AtomicBool::new(false);

/// `/usr/sbin/NAME` where it exists (root's PATH may lack sbin), else NAME from PATH.
fn sbin(name: &str) -> String {
    let full = format!("/usr/sbin/{name}");
    if Path::new(&full).exists() {
        full
    } else {
        name.to_owned()
    }
}

/// Runs `ip ARGS`; an error names the command and carries its stderr.
fn ip(args: &[&str]) -> io::Result<String> {
    run("ip", args)
}

/// Runs `program ARGS` (from sbin) and returns its stdout; an error names the command and
/// carries its stderr, as `PermissionDenied` where that is the cause.
fn run(program: &str, args: &[&str]) -> io::Result<String> {
    let cmd = format!("`{program} {}`", args.join(" "));
    let out = Command::new(sbin(program))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {cmd}: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kind = match stderr.contains("not permitted") || stderr.contains("denied") {
        true => io::ErrorKind::PermissionDenied,
        false => io::ErrorKind::Other,
    };
    let msg = format!("{cmd} failed ({}): {}", out.status, stderr.trim());
    Err(io::Error::new(kind, msg))
}

/// SIGKILLs every process inside namespace `name`, then deletes the namespace.
/// Best effort: used on drop and for stale labs.
fn remove_netns(name: &str) {
    let pids = ip(&["netns", "pids", name]).unwrap_or_default();
    for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = ip(&["netns", "del", name]);
}

/// A private network: a switch namespace with a bridge, `hosts` host namespaces on it, and
/// a veth from the root namespace. Every namespace (and so every interface) is removed on
/// drop, after killing any process still inside one.
pub struct Lab {
    /// `mqc{pid}`.
    base: String,
    /// Names of the host namespaces, in host order.
    hosts: Vec<String>,
    /// The first three octets of the lab's /24.
    net: [u8; 3],
    /// Blackhole routes in place: (host whose namespace has it, address it drops).
    routes: Mutex<Vec<(usize, Ipv4Addr)>>,
}

impl Lab {
    /// Creates the switch, `hosts` hosts (at most 200) and the root-side link, all up.
    /// Fails with [`io::ErrorKind::PermissionDenied`] where namespaces are not allowed
    /// (not root, no `CAP_SYS_ADMIN`), so the caller can fall back; on any failure
    /// whatever was created is removed again. One lab per process at a time.
    pub fn create(hosts: usize) -> io::Result<Lab> {
        if hosts == 0 || hosts > 200 {
            return Err(io::Error::other(format!("{hosts} hosts (1..=200)")));
        }
        // SAFETY: geteuid(2) cannot fail and has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "network namespaces need root (euid is not 0)",
            ));
        }
        if LIVE.swap(true, Ordering::SeqCst) {
            return Err(io::Error::other("a Lab already exists in this process"));
        }
        Lab::cleanup_stale();
        let pid = std::process::id();
        let base = format!("{PREFIX}{pid}");
        let mut lab = Lab {
            hosts: Vec::new(),
            // 198.18.0.0/15 is set aside for benchmarking networks (RFC 2544): no real
            // network this machine is on uses it.
            net: [198, (18 + pid % 2) as u8, (pid / 2 % 256) as u8],
            routes: Mutex::new(Vec::new()),
            base,
        };
        // On error `lab` drops here and removes what exists so far.
        lab.build(hosts)?;
        Ok(lab)
    }

    fn build(&mut self, hosts: usize) -> io::Result<()> {
        let sw = self.switch_name();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let host = format!("{}h{i}", self.base);
            ip(&["netns", "add", &host])?;
            self.hosts.push(host.clone());
            let port = format!("h{i}");
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &host,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            let addr = format!("{}/24", self.host_ip(i));
            ip(&["-n", &host, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
        }
        let root = self.root_veth();
        ip(&[
            "link", "add", &root, "type", "veth", "peer", "name", "root", "netns", &sw,
        ])?;
        let addr = format!("{}/24", self.root_ip());
        ip(&["addr", "add", &addr, "dev", &root])?;
        ip(&["link", "set", &root, "up"])?;
        ip(&["-n", &sw, "link", "set", "root", "master", "br0", "up"])?;
        Ok(())
    }

    /// Removes the namespaces (and root-side veths) of labs whose process is gone, after
    /// killing anything still running inside them. Best effort; never fails.
    pub fn cleanup_stale() {
        let dead = |name: &str| -> Option<u32> {
            let digits: String = name
                .strip_prefix(PREFIX)?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let pid: u32 = digits.parse().ok()?;
            (!Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
        };
        // Deleting a switch namespace destroys its root-side veth with the peer; the second
        // pass only catches a lab that died between creating the veth and moving its peer.
        for dir in ["/run/netns", "/sys/class/net"] {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                match dead(&name) {
                    Some(_) if dir == "/run/netns" => remove_netns(&name),
                    Some(_) if name.ends_with('r') => drop(ip(&["link", "del", &name])),
                    _ => {}
                }
            }
        }
    }

    /// How many hosts the lab has.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Host `i`'s address: .(i + 10) of the lab's /24. Panics if `i` is out of range.
    pub fn host_ip(&self, i: usize) -> Ipv4Addr {
        assert!(i < 200, "host {i} out of range");
        let [a, b, c] = self.net;
        Ipv4Addr::new(a, b, c, 10 + i as u8)
    }

    /// The root namespace's address on the lab network (.1): where hosts see clients.
    pub fn root_ip(&self) -> Ipv4Addr {
        let [a, b, c] = self.net;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// Name of host `i`'s namespace (as `ip netns` lists it). Panics if out of range.
    pub fn netns_name(&self, i: usize) -> &str {
        &self.hosts[i]
    }

    fn switch_name(&self) -> String {
        format!("{}s", self.base)
    }

    fn root_veth(&self) -> String {
        format!("{}r", self.base)
    }

    /// A command running `program` inside host `i` (`ip netns exec NAME program`; ip
    /// execs it, so the child's pid is the program's). Add arguments as usual.
    pub fn command(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(sbin("ip"));
        cmd.args(["netns", "exec", self.netns_name(i)]).arg(program);
        cmd
    }

    /// Partitions the hosts: hosts in different groups cannot reach each other (hosts in
    /// no group form one more group together); every host stays reachable from the root
    /// namespace. Replaces any earlier partition.
    pub fn partition(&self, groups: &[Vec<usize>]) -> io::Result<()> {
        self.heal()?;
        let group_of = |h: usize| groups.iter().position(|g| g.contains(&h));
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        for a in 0..self.len() {
            for b in 0..self.len() {
                if a != b && group_of(a) != group_of(b) {
                    let dest = format!("{}/32", self.host_ip(b));
                    ip(&["-n", &self.hosts[a], "route", "add", "blackhole", &dest])?;
                    routes.push((a, self.host_ip(b)));
                }
            }
        }
        Ok(())
    }

    /// Removes every partition. Tries every route and reports the first failure.
    pub fn heal(&self) -> io::Result<()> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let mut result = Ok(());
        for (a, dest) in routes.drain(..) {
            let dest = format!("{dest}/32");
            let r = ip(&["-n", &self.hosts[a], "route", "del", "blackhole", &dest]);
            result = result.and(r.map(drop));
        }
        result
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for host in &self.hosts {
            remove_netns(host);
        }
        remove_netns(&self.switch_name());
        // The root veth dies with its peer in the switch namespace; make sure.
        let root = self.root_veth();
        if Path::new(&format!("/sys/class/net/{root}")).exists() {
            let _ = ip(&["link", "del", &root]);
        }
        LIVE.store(false, Ordering::SeqCst);
    }
}
