//! Requests encoded byte for byte; replies decoded from hand-made frames.

use puffs::Errno;

use super::serve;
use crate::consts::*;
use crate::*;

fn body(frame: &[u8]) -> &[u8] {
    split_frame(frame).unwrap().unwrap().0
}

#[test]
fn a_read_request_is_laid_out_as_the_draft_says() {
    let mut out = b"earlier".to_vec();
    let req = Request::Read {
        handle: b"h1",
        offset: 0x0102_0304_0506_0708,
        len: 4096,
    };
    req.encode(0xAABB_CCDD, &mut out).unwrap();
    let want: &[u8] = &[
        0,
        0,
        0,
        23,
        SSH_FXP_READ,
        0xAA,
        0xBB,
        0xCC,
        0xDD,
        0,
        0,
        0,
        2,
        b'h',
        b'1',
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        0,
        0,
        0x10,
        0,
    ];
    assert_eq!(&out[..7], b"earlier", "appended, not overwritten");
    assert_eq!(&out[7..], want);
}

#[test]
fn init_has_no_id() {
    let mut out = Vec::new();
    encode_init(&mut out);
    assert_eq!(out, [0, 0, 0, 5, SSH_FXP_INIT, 0, 0, 0, 3]);
}

#[test]
fn extended_requests_carry_their_names() {
    let cases: [(Request, &[u8]); 9] = [
        (
            Request::PosixRename {
                from: b"a",
                to: b"b",
            },
            EXT_POSIX_RENAME,
        ),
        (Request::Statvfs { path: b"/" }, EXT_STATVFS),
        (Request::Fstatvfs { handle: b"h" }, EXT_FSTATVFS),
        (
            Request::Hardlink {
                existing: b"a",
                new: b"b",
            },
            EXT_HARDLINK,
        ),
        (Request::Fsync { handle: b"h" }, EXT_FSYNC),
        (
            Request::Lsetstat {
                path: b"l",
                attrs: Attrs::default(),
            },
            EXT_LSETSTAT,
        ),
        (Request::Limits, EXT_LIMITS),
        (Request::ExpandPath { path: b"~" }, EXT_EXPAND_PATH),
        (
            Request::CopyData {
                from: b"r",
                from_offset: 1,
                len: 2,
                to: b"w",
                to_offset: 3,
            },
            EXT_COPY_DATA,
        ),
    ];
    for (req, name) in cases {
        let mut out = Vec::new();
        req.encode(9, &mut out).unwrap();
        let b = body(&out);
        assert_eq!(b[0], SSH_FXP_EXTENDED, "{req:?}");
        assert_eq!(&b[1..5], &9u32.to_be_bytes());
        assert_eq!(&b[5..9], &(name.len() as u32).to_be_bytes());
        assert_eq!(&b[9..9 + name.len()], name);
    }
}

#[test]
fn a_request_beyond_the_frame_limit_is_refused_and_not_appended() {
    let data = vec![0u8; MAX_FRAME];
    let mut out = vec![1, 2, 3];
    let err = Request::Write {
        handle: b"h",
        offset: 0,
        data: &data,
    }
    .encode(1, &mut out)
    .unwrap_err();
    assert!(err.len > MAX_FRAME);
    assert_eq!(out, [1, 2, 3]);
    // The largest read the server answers fits in a frame.
    let fit = vec![0u8; MAX_READ as usize];
    Request::Write {
        handle: b"h",
        offset: 0,
        data: &fit,
    }
    .encode(1, &mut out)
    .unwrap();
}

#[test]
fn frames_are_bounded_and_split_only_when_whole() {
    assert_eq!(frame_len(0u32.to_be_bytes()), Err(DecodeError::EmptyFrame));
    assert_eq!(frame_len((MAX_FRAME as u32).to_be_bytes()), Ok(MAX_FRAME));
    assert!(matches!(
        frame_len((MAX_FRAME as u32 + 1).to_be_bytes()),
        Err(DecodeError::Oversized { .. })
    ));
    assert!(frame_len(u32::MAX.to_be_bytes()).is_err());
    let f = serve::status(5, SSH_FX_OK, b"ok");
    for cut in 0..f.len() {
        assert_eq!(split_frame(&f[..cut]), Ok(None), "cut at {cut}");
    }
    let mut two = f.clone();
    two.extend_from_slice(&f);
    let (b, used) = split_frame(&two).unwrap().unwrap();
    assert_eq!(used, f.len());
    assert_eq!(reply_id(b), Some(5));
    assert_eq!(reply_id(&[SSH_FXP_VERSION, 0, 0, 0, 3]), None);
}

#[test]
fn every_reply_type_decodes() {
    let full = Attrs {
        size: Some(1 << 40),
        uid_gid: Some((1000, 100)),
        permissions: Some(S_IFREG | 0o644),
        atime_mtime: Some((1, 2)),
    };
    let f = serve::status(1, SSH_FX_NO_SUCH_FILE, b"No such file");
    let (id, r) = decode_reply(body(&f)).unwrap();
    assert_eq!(id, 1);
    assert_eq!(r.clone().into_status(), Err(Errno::ENOENT));
    assert_eq!(
        r.into_attrs(),
        Err(Errno::ENOENT),
        "an error STATUS keeps its errno"
    );

    // A STATUS without message and language tag (old servers).
    let f = serve::reply(SSH_FXP_STATUS, 2, &SSH_FX_EOF.to_be_bytes());
    let (_, r) = decode_reply(body(&f)).unwrap();
    assert_eq!(r.clone().into_data(), Ok(&b""[..]));
    assert_eq!(r.into_names(), Ok(None));

    let mut p = Vec::new();
    serve::string(&mut p, b"\0\0\0\x07");
    let f = serve::reply(SSH_FXP_HANDLE, 3, &p);
    assert_eq!(
        decode_reply(body(&f)).unwrap().1.into_handle(),
        Ok(&b"\0\0\0\x07"[..])
    );

    let mut p = Vec::new();
    serve::string(&mut p, b"data\xff");
    let f = serve::reply(SSH_FXP_DATA, 4, &p);
    assert_eq!(
        decode_reply(body(&f)).unwrap().1.into_data(),
        Ok(&b"data\xff"[..])
    );

    let odd: &[u8] = b"new\nline\\\xfe";
    let f = serve::names(5, &[(b".", Attrs::default()), (odd, full)]);
    let names = decode_reply(body(&f))
        .unwrap()
        .1
        .into_names()
        .unwrap()
        .unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(names[1].filename, odd);
    assert_eq!(names[1].attrs, full);
    assert_eq!(names[1].attrs.file_type(), Some(S_IFREG));

    // ATTRS with extended pairs: skipped, the fields before them kept.
    let mut p = serve::attrs(&full);
    p[0] |= 0x80; // SSH_FILEXFER_ATTR_EXTENDED, the flags word's top bit
    p.extend_from_slice(&2u32.to_be_bytes());
    for s in [&b"k1"[..], b"v1", b"k2", b""] {
        serve::string(&mut p, s);
    }
    let f = serve::reply(SSH_FXP_ATTRS, 6, &p);
    assert_eq!(decode_reply(body(&f)).unwrap().1.into_attrs(), Ok(full));

    let mut p = Vec::new();
    for v in 1..=11u64 {
        p.extend_from_slice(&v.to_be_bytes());
    }
    let f = serve::reply(SSH_FXP_EXTENDED_REPLY, 7, &p);
    let e = decode_reply(body(&f)).unwrap().1.into_extended().unwrap();
    let s = Statvfs::decode(e).unwrap();
    assert_eq!((s.bsize, s.fsid, s.namemax), (1, 9, 11));
    let l = Limits::decode(e).unwrap();
    assert_eq!((l.packet_len, l.open_handles), (1, 4));
    assert_eq!(Statvfs::decode(&p[..87]), Err(DecodeError::Truncated));

    // The wrong kind of reply is EIO, a successful STATUS where data was due too.
    let f = serve::status(8, SSH_FX_OK, b"");
    assert_eq!(
        decode_reply(body(&f)).unwrap().1.into_handle(),
        Err(Errno::EIO)
    );
}

#[test]
fn version_records_the_extensions_it_knows_at_their_versions() {
    let mut p = 3u32.to_be_bytes().to_vec();
    for (n, v) in [
        (EXT_POSIX_RENAME, &b"1"[..]),
        (EXT_STATVFS, b"2"),
        (EXT_FSTATVFS, b"1"), // wrong version: not used
        (b"unknown@example.com", b"x"),
        (EXT_COPY_DATA, b"1"),
    ] {
        serve::string(&mut p, n);
        serve::string(&mut p, v);
    }
    let f = serve::frame(SSH_FXP_VERSION, &p);
    let v = Version::decode(body(&f)).unwrap();
    assert_eq!(v.version, 3);
    let e = v.extensions;
    assert!(e.posix_rename && e.statvfs && e.copy_data);
    assert!(!e.fstatvfs && !e.fsync && !e.limits);
    // A dangling extension name is an error, not ignored.
    let f = serve::frame(SSH_FXP_VERSION, &p[..p.len() - 3]);
    assert_eq!(Version::decode(body(&f)), Err(DecodeError::Truncated));
}

#[test]
fn open_flags_follow_posix() {
    let f = |fl| OpenFlags::from_posix(fl).0;
    assert_eq!(f(libc::O_RDONLY), SSH_FXF_READ);
    assert_eq!(
        f(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
        SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC
    );
    assert_eq!(
        f(libc::O_RDWR | libc::O_APPEND | libc::O_EXCL | libc::O_CREAT),
        0x3f & !SSH_FXF_TRUNC
    );
}

#[test]
fn status_codes_map_to_errnos() {
    assert_eq!(status_errno(SSH_FX_NO_SUCH_FILE), Errno::ENOENT);
    assert_eq!(status_errno(SSH_FX_PERMISSION_DENIED), Errno::EACCES);
    assert_eq!(status_errno(SSH_FX_FAILURE), Errno::EPERM);
    assert_eq!(status_errno(SSH_FX_OP_UNSUPPORTED), Errno::EOPNOTSUPP);
    assert_eq!(status_errno(SSH_FX_CONNECTION_LOST), Errno::ECONNABORTED);
    assert_eq!(status_errno(18), Errno::ENOTEMPTY);
    assert_eq!(status_errno(SSH_FX_EOF), Errno::EIO);
    assert_eq!(status_errno(u32::MAX), Errno::EIO);
}
