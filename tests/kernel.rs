//! The kernel behaviour the read marks of chat-sub and chat-pub rest on (src/mqtt/coalesce/),
//! checked on the machine the tests run on. It needs Linux 4.18 or later: a socket's
//! SO_RCVLOWAT keeps it from being readable until that many bytes are queued, and
//! lowering the mark wakes a reader asleep on the socket if bytes are queued below the
//! old mark (tcp_set_rcvlowat), so no bytes wait for the next message. On an older kernel
//! the tools read without marks (`coalesce::supported()` is false), and this test fails,
//! saying so, instead of passing without having checked anything.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;

use mqttchat::mqtt::coalesce::{set_rcvlowat, supported};

use crate::common::*;

/// Whether `fd` is readable now: poll(2) without waiting.
fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and a zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    p.revents & libc::POLLIN != 0
}

/// Whether thread `tid` of this process is blocked in ppoll(2).
fn blocked_in_ppoll(tid: libc::pid_t) -> bool {
    let call =
        std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
    call.split_whitespace().next() == Some(&libc::SYS_ppoll.to_string())
}

#[test]
fn lowering_the_read_mark_wakes_a_reader_asleep_on_bytes_below_it() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    assert!(
        supported(),
        "this kernel ({}) is not Linux 4.18 or later: chat-pub and chat-sub read without \
         marks here (src/mqtt/coalesce/), and what they rely on cannot be checked",
        release.trim()
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (ours, _) = listener.accept().expect("accept");
    let fd = ours.as_raw_fd();

    // 100 bytes queued below a mark of 8 KiB: not readable.
    set_rcvlowat(&ours, 8192).expect("SO_RCVLOWAT 8192");
    peer.write_all(&[b'x'; 100]).expect("write");
    wait_until(
        "the 100 bytes are queued",
        || unread(&ours) == 100,
        || format!("{} bytes queued", unread(&ours)),
    );
    assert!(
        !readable_now(fd),
        "readable with 100 bytes below a mark of 8192"
    );

    // A reader asleep in ppoll(2) with no timeout of its own is woken by lowering the
    // mark, and by nothing else: no more bytes come.
    let (tid_tx, tid_rx) = mpsc::channel();
    let (woke_tx, woke_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).expect("send tid");
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; no timeout and no signal mask (null pointers).
        let n = unsafe { libc::ppoll(&mut p, 1, std::ptr::null(), std::ptr::null()) };
        let _ = woke_tx.send((n == 1).then_some(p.revents));
    });
    let tid = tid_rx.recv().expect("the reader's tid");
    wait_until(
        "the reader is asleep in ppoll",
        || blocked_in_ppoll(tid),
        || format!("/proc/self/task/{tid}/syscall says otherwise"),
    );
    set_rcvlowat(&ours, 1).expect("SO_RCVLOWAT 1");
    let revents = woke_rx
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|e| panic!("lowering the mark did not wake the reader ({e})"));
    assert!(
        revents.is_some_and(|r| r & libc::POLLIN != 0),
        "the reader woke with {revents:?}"
    );
    reader.join().expect("reader thread");
}
