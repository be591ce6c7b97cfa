//! Per-reply attribute lifetimes: an op's `AttrReply::with_ttl` overrides the mount's
//! attr timeout for that reply (a network fs gives what it fetched a short life).
//! Each getattr of a file answers a size one larger than the last, so a stat that
//! reaches the fs shows a new size and one the kernel answers from its cache does not.

use std::cell::Cell;
use std::ffi::OsStr;
use std::time::Duration;

use puffs::PuffsUserMount;
use puffs::{Attr, AttrReply, Cx, Entry, EntryOf, Errno, FileType, Node, OpResult, Ops};
use puffs_tests::*;

/// "short" answers with a zero attribute lifetime of its own, "long" with the mount's.
#[derive(Default)]
struct Growing {
    size: Cell<u64>,
}

fn file_attr(ino: u64, size: u64) -> Attr {
    let mut a = Attr::new(FileType::RegularFile, 0o444);
    a.ino = ino;
    a.size = size;
    a
}

#[puffs::ops]
impl Ops for Growing {
    type Node = u64;
    type Key = u64;

    fn root(&self) -> (u64, u64) {
        (1, 1)
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        let ino = match name.to_str() {
            Some("short") => 2,
            Some("long") => 3,
            _ => return Err(Errno::ENOENT),
        };
        let mut e = Entry::new(ino, ino, file_attr(ino, 0));
        if ino == 2 {
            // The lookup's own copy must not stand in for the getattrs under test.
            e.attr_ttl = Some(Duration::ZERO);
        }
        Ok(e)
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        node: &Node<Self>,
        _f: Option<&Self::File>,
    ) -> OpResult<AttrReply> {
        if **node == 1 {
            return Ok(Attr::new(FileType::Directory, 0o755).into());
        }
        self.size.set(self.size.get() + 1);
        let attr = file_attr(**node, self.size.get());
        Ok(match **node {
            2 => AttrReply::with_ttl(attr, Duration::ZERO),
            _ => attr.into(),
        })
    }
}

/// The mount (attr timeout one hour, so only a reply's own lifetime can be short).
fn mount() -> InProcessMount {
    InProcessMount::start(|dir| {
        PuffsUserMount::new(Growing::default(), "ttlfs", "probe")
            .handle_signals(false)
            .attr_timeout(Duration::from_secs(3600))
            .entry_timeout(Duration::from_secs(3600))
            .mount(dir)
    })
}

fn size(m: &InProcessMount, name: &str) -> u64 {
    std::fs::metadata(m.join(name)).expect("stat").len()
}

#[test]
fn an_attr_reply_of_its_own_outlives_or_undercuts_the_mount_timeout() {
    require_fuse!();
    let m = mount();
    // "long" (the mount's hour): the first stat's answer is cached, later ones agree.
    let long = size(&m, "long");
    assert_eq!(
        size(&m, "long"),
        long,
        "the mount's attr timeout was not kept"
    );
    // "short" (zero of its own): every stat asks the fs again and sees a new size.
    let a = size(&m, "short");
    let b = size(&m, "short");
    assert_ne!(
        a, b,
        "the reply's own zero lifetime was ignored: stat came from the cache"
    );
}
