//! Dispatch without /dev/fuse: requests go in as frames with recording replies, the
//! executor runs their continuations, and the recorded answers are checked.

use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::dispatch;
use crate::args::OpenFlags;
use crate::attr::{Attr, AttrReply, DirEntry, Entry, FileType, Lock, Open, Opened, Statvfs, Ttls};
use crate::cx::Cx;
use crate::data::Data;
use crate::dirbuf::DirBuf;
use crate::errno::Errno;
use crate::kernel::reply::*;
use crate::kernel::request::{DirOp, FileOp, KOp, NameOp, NodeOp};
use crate::node::{Node, ROOT_INO};
use crate::notify::Notifier;
use crate::ops::{Cred, EntryOf, Op, OpMask, OpResult, Ops};
use crate::passthrough::Backing;
use crate::runtime::{Runtime, Settings};

/// Every answer a recording reply got, as text.
type Log = Rc<RefCell<Vec<String>>>;

struct Rec(Log);

impl Rec {
    fn push(&self, s: String) {
        self.0.borrow_mut().push(s);
    }
}

impl Reply for Rec {
    fn error(self, e: Errno) {
        self.push(format!("error {e:?}"));
    }
}
impl ReplyEmpty for Rec {
    fn ok(self) {
        self.push("ok".into());
    }
}
impl ReplyEntry for Rec {
    fn entry(self, attr: &Attr, ino: u64, _gen: u64, _ttls: &Ttls) {
        self.push(format!("entry ino={ino} size={}", attr.size));
    }
}
impl ReplyAttr for Rec {
    fn attr(self, attr: &Attr, ino: u64, _ttl: Duration) {
        self.push(format!("attr ino={ino} size={}", attr.size));
    }
}
impl ReplyData for Rec {
    fn data(self, data: &[u8]) {
        self.push(format!("data {}", String::from_utf8_lossy(data)));
    }
}
impl ReplyOpen for Rec {
    fn opened(self, o: &Opened) {
        let pt = if o.passthrough.is_some() {
            " passthrough"
        } else {
            ""
        };
        self.push(format!("opened fh={}{pt}", o.fh));
    }
}
impl ReplyCreate for Rec {
    fn created(self, _a: &Attr, ino: u64, _g: u64, _t: &Ttls, o: &Opened) {
        let pt = if o.passthrough.is_some() {
            " passthrough"
        } else {
            ""
        };
        self.push(format!("created ino={ino} fh={}{pt}", o.fh));
    }
}
impl ReplyWrite for Rec {
    fn written(self, n: u32) {
        self.push(format!("written {n}"));
    }
}
impl ReplyStatfs for Rec {
    fn statfs(self, s: &Statvfs) {
        self.push(format!("statfs blocks={}", s.blocks));
    }
}
impl ReplyXattr for Rec {
    fn size(self, n: u32) {
        self.push(format!("xattr size {n}"));
    }
    fn value(self, data: &[u8]) {
        self.push(format!("xattr {}", String::from_utf8_lossy(data)));
    }
}
impl ReplyDir for Rec {
    fn add(&mut self, e: &DirEntry) -> bool {
        self.push(format!("dirent {:?}", e.name));
        false
    }
    fn done(self) {
        self.push("done".into());
    }
}
impl ReplyDirPlus for Rec {
    fn add(&mut self, name: &OsStr, _off: u64, _e: PlusEntry<'_>) -> bool {
        self.push(format!("direntplus {name:?}"));
        false
    }
    fn done(self) {
        self.push("done".into());
    }
}
impl ReplyLseek for Rec {
    fn offset(self, off: i64) {
        self.push(format!("offset {off}"));
    }
}
impl ReplyLock for Rec {
    fn locked(self, l: &Lock) {
        self.push(format!("locked {}", l.start));
    }
}

struct Recording;

impl Replies for Recording {
    type Empty = Rec;
    type Entry = Rec;
    type Attr = Rec;
    type Data = Rec;
    type Open = Rec;
    type Create = Rec;
    type Write = Rec;
    type Statfs = Rec;
    type Xattr = Rec;
    type Dir = Rec;
    type DirPlus = Rec;
    type Lseek = Rec;
    type Lock = Rec;
}

/// A file system with one file, "f" (key 2, "hello"), counting the ops it ran.
#[derive(Default)]
struct OneFile {
    ran: Cell<u32>,
}

impl OneFile {
    fn ran(&self) -> OpResult<()> {
        self.ran.set(self.ran.get() + 1);
        Ok(())
    }
}

impl Ops for OneFile {
    type Node = ();
    type Key = u64;
    type File = ();
    type Dir = ();
    const OPMASK: OpMask =
        OpMask::of(&[Op::Lookup, Op::Getattr, Op::Read, Op::Getxattr, Op::Readdir]);

    // No open or opendir: every open shares the stateless (), as #[puffs::ops] writes.
    fn stateless_file() -> Option<()> {
        Some(())
    }
    fn stateless_dir() -> Option<()> {
        Some(())
    }

    fn root(&self) -> (u64, ()) {
        (1, ())
    }

    async fn lookup(
        &self,
        _cx: &Cx<Self>,
        _d: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        self.ran()?;
        match name.to_str() {
            Some("f") => Ok(Entry::new(2, (), file_attr())),
            _ => Err(Errno::ENOENT),
        }
    }

    async fn getattr(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        _f: Option<&()>,
    ) -> OpResult<AttrReply> {
        self.ran()?;
        Ok(file_attr().into())
    }

    async fn read(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        _f: &(),
        off: u64,
        size: u32,
    ) -> OpResult<Data> {
        self.ran()?;
        // Deliberately ignores `size` past offset 100, to test the framework's check.
        let data: &'static [u8] = b"hello";
        Ok(if off > 100 {
            data.into()
        } else {
            data[..data.len().min(size as usize)].into()
        })
    }

    async fn getxattr(&self, _cx: &Cx<Self>, _n: &Node<Self>, _name: &OsStr) -> OpResult<Vec<u8>> {
        self.ran()?;
        Ok(b"value".to_vec())
    }

    async fn readdir(
        &self,
        _cx: &Cx<Self>,
        _d: &Node<Self>,
        _open: &(),
        off: u64,
        out: &mut DirBuf,
    ) -> OpResult<()> {
        self.ran()?;
        if off == 0 {
            out.add(2, 1, FileType::RegularFile, OsStr::new("f"));
        }
        Ok(())
    }
}

fn file_attr() -> Attr {
    let mut a = Attr::new(FileType::RegularFile, 0o644);
    a.size = 5;
    a
}

const CRED: Cred = Cred {
    uid: 0,
    gid: 0,
    pid: 1,
};

/// Runs `kop` to its reply and returns what the replies recorded.
fn run<F: Ops>(rt: &Rc<Runtime<F>>, kop: KOp<Recording>) -> Vec<String> {
    LOG.with(|l| l.borrow_mut().clear());
    dispatch(rt, CRED, kop);
    rt.exec.run_ready();
    LOG.with(|l| l.borrow().clone())
}

thread_local! {
    static LOG: Log = Log::default();
}

fn rec() -> Rec {
    LOG.with(|l| Rec(Rc::clone(l)))
}

fn mount() -> Rc<Runtime<OneFile>> {
    runtime_of(OneFile::default())
}

/// The runtime `fs` would run with, without a mount.
fn runtime_of<F: Ops>(fs: F) -> Rc<Runtime<F>> {
    let names = ("test".to_owned(), "none".to_owned());
    let rt = Runtime::new(fs, names, Settings::default(), Notifier::default());
    Rc::new(rt.expect("runtime without a mount"))
}

fn name(s: &str) -> std::ffi::OsString {
    s.into()
}

#[test]
fn an_ops_result_reaches_its_reply() {
    let rt = mount();
    let got = run(&rt, {
        KOp::Name(NameOp::Lookup {
            parent: ROOT_INO,
            name: name("f"),
            reply: rec(),
        })
    });
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("entry ino=") && got[0].ends_with("size=5"),
        "{got:?}"
    );
    let ino = rt
        .nodes
        .borrow()
        .by_key(&2)
        .expect("entered into the node table")
        .ino();
    let got = run(&rt, {
        KOp::File(FileOp::Read {
            ino,
            fh: 0,
            offset: 0,
            size: 4,
            reply: rec(),
        })
    });
    assert_eq!(got, ["data hell"]);
    let got = run(&rt, {
        KOp::Dir(DirOp::Readdir {
            ino: ROOT_INO,
            fh: 0,
            offset: 0,
            reply: rec(),
        })
    });
    assert_eq!(got, ["dirent \"f\"", "done"]);
}

#[test]
fn an_ops_error_becomes_the_reply_error() {
    let rt = mount();
    let got = run(&rt, {
        KOp::Name(NameOp::Lookup {
            parent: ROOT_INO,
            name: name("nope"),
            reply: rec(),
        })
    });
    assert_eq!(got, ["error ENOENT"]);
    // An op the fs left out answers its default, ENOSYS, through the same path.
    let got = run(&rt, {
        KOp::Name(NameOp::Unlink {
            parent: ROOT_INO,
            name: name("f"),
            reply: rec(),
        })
    });
    assert_eq!(got, ["error ENOSYS"]);
}

#[test]
fn an_unknown_inode_is_stale_and_runs_nothing() {
    let rt = mount();
    let got = run(&rt, {
        KOp::Node(NodeOp::Getattr {
            ino: 999,
            fh: None,
            reply: rec(),
        })
    });
    assert_eq!(got, ["error ESTALE"]);
    assert_eq!(
        rt.fs.ran.get(),
        0,
        "the op ran for an inode the table does not hold"
    );
}

#[test]
fn the_framework_checks_what_an_op_returns() {
    let rt = mount();
    // More bytes than asked: EIO, not a reply the kernel would reject.
    let got = run(&rt, {
        KOp::File(FileOp::Read {
            ino: ROOT_INO,
            fh: 0,
            offset: 200,
            size: 2,
            reply: rec(),
        })
    });
    assert_eq!(got, ["error EIO"]);
    // xattr: a size probe gets the length, a short buffer ERANGE, a big one the value.
    let x = |size| {
        KOp::Node(NodeOp::Getxattr {
            ino: ROOT_INO,
            name: name("user.a"),
            size,
            reply: rec(),
        })
    };
    assert_eq!(run(&rt, x(0)), ["xattr size 5"]);
    assert_eq!(run(&rt, x(3)), ["error ERANGE"]);
    assert_eq!(run(&rt, x(64)), ["xattr value"]);
}

/// A file system whose open files are objects: each open gets a serial number and a
/// log of what happened to it, so the tests see which object each op got.
#[derive(Default)]
struct Opens {
    serial: Cell<u32>,
    released: RefCell<Vec<u32>>,
}

/// One open file: its serial, and the bytes written through it (kept, not copied).
struct OpenFile {
    serial: u32,
    written: RefCell<Vec<Vec<u8>>>,
}

impl Ops for Opens {
    type Node = ();
    type Key = u64;
    type File = OpenFile;
    type Dir = ();
    const OPMASK: OpMask = OpMask::of(&[Op::Open, Op::Read, Op::Write, Op::Release]);

    fn root(&self) -> (u64, ()) {
        (1, ())
    }

    async fn open(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        flags: OpenFlags,
    ) -> OpResult<Open<OpenFile>> {
        self.serial.set(self.serial.get() + 1);
        let file = OpenFile {
            serial: self.serial.get(),
            written: RefCell::default(),
        };
        // O_SYNC asks this test fs for a passthrough backing file (any fd will do).
        let passthrough = match flags.contains(OpenFlags::SYNC) {
            true => Some(Rc::new(Backing::new(Arc::new(
                std::fs::File::open("/dev/null")?.into(),
            )))),
            false => None,
        };
        Ok(Open {
            passthrough,
            ..Open::new(file)
        })
    }

    async fn read(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        f: &OpenFile,
        _off: u64,
        _size: u32,
    ) -> OpResult<Data> {
        let written = f.written.borrow().concat();
        Ok(
            format!("#{} {}", f.serial, String::from_utf8_lossy(&written))
                .into_bytes()
                .into(),
        )
    }

    async fn write(
        &self,
        _cx: &Cx<Self>,
        _n: &Node<Self>,
        f: &OpenFile,
        _off: u64,
        data: Vec<u8>,
        _flags: OpenFlags,
    ) -> OpResult<u32> {
        let n = data.len() as u32;
        f.written.borrow_mut().push(data);
        Ok(n)
    }

    async fn release(&self, _cx: &Cx<Self>, _n: &Node<Self>, f: OpenFile) -> OpResult<()> {
        self.released.borrow_mut().push(f.serial);
        Ok(())
    }
}

fn fh_of(answer: &[String]) -> u64 {
    let fh = answer[0]
        .strip_prefix("opened fh=")
        .expect("an open answer");
    fh.parse().unwrap()
}

#[test]
fn each_open_files_object_comes_back_to_its_ops_and_release() {
    let rt = runtime_of(Opens::default());
    let open = |flags| {
        KOp::File(FileOp::Open {
            ino: ROOT_INO,
            flags,
            reply: rec(),
        })
    };
    let (a, b) = (
        fh_of(&run(&rt, open(OpenFlags::default()))),
        fh_of(&run(&rt, open(OpenFlags::RDWR))),
    );
    assert_ne!(a, b, "two opens, two handles");
    let write = |fh, data: &[u8]| {
        KOp::File(FileOp::Write {
            ino: ROOT_INO,
            fh,
            offset: 0,
            data: data.to_vec(),
            flags: OpenFlags::RDWR,
            reply: rec(),
        })
    };
    assert_eq!(run(&rt, write(b, b"xy")), ["written 2"]);
    let read = |fh| {
        KOp::File(FileOp::Read {
            ino: ROOT_INO,
            fh,
            offset: 0,
            size: 64,
            reply: rec(),
        })
    };
    assert_eq!(run(&rt, read(a)), ["data #1 "]);
    assert_eq!(run(&rt, read(b)), ["data #2 xy"]);
    // A handle the framework never gave out is EBADF, and reaches no op.
    assert_eq!(run(&rt, read(b + 100)), ["error EBADF"]);
    let release = |fh| {
        KOp::File(FileOp::Release {
            ino: ROOT_INO,
            fh,
            reply: rec(),
        })
    };
    assert_eq!(run(&rt, release(b)), ["ok"]);
    assert_eq!(
        *rt.fs.released.borrow(),
        [2],
        "release got the object by value"
    );
    assert_eq!(run(&rt, read(b)), ["error EBADF"], "released means gone");
    assert_eq!(run(&rt, release(a)), ["ok"]);
    assert_eq!(rt.files.open_count(), 0);
}

#[test]
fn a_passthrough_backing_file_reaches_the_open_reply() {
    let rt = runtime_of(Opens::default());
    let open = |flags| {
        KOp::File(FileOp::Open {
            ino: ROOT_INO,
            flags,
            reply: rec(),
        })
    };
    assert_eq!(run(&rt, open(OpenFlags::SYNC)), ["opened fh=1 passthrough"]);
    assert_eq!(run(&rt, open(OpenFlags::default())), ["opened fh=2"]);
    let release = |fh| {
        KOp::File(FileOp::Release {
            ino: ROOT_INO,
            fh,
            reply: rec(),
        })
    };
    assert_eq!(run(&rt, release(1)), ["ok"]);
    assert_eq!(
        *rt.fs.released.borrow(),
        [1],
        "the object came back to release"
    );
}

#[test]
fn a_stateless_file_system_shares_one_object_at_handle_zero() {
    let rt = mount();
    let got = run(&rt, {
        KOp::Node(NodeOp::Getattr {
            ino: ROOT_INO,
            fh: Some(0),
            reply: rec(),
        })
    });
    assert!(got[0].starts_with("attr"), "{got:?}");
    assert_eq!(rt.files.open_count(), 1, "the stateless object, kept once");
}
