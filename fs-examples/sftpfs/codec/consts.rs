//! The numbers of SFTP version 3 (draft-ietf-secsh-filexfer-02) and OpenSSH's
//! PROTOCOL document: message types, status codes, attribute and open flags, and the
//! names of the extensions this client uses.

#![allow(missing_docs)] // the names are the protocol's own

pub const SFTP_VERSION: u32 = 3;

pub const SSH_FXP_INIT: u8 = 1;
pub const SSH_FXP_VERSION: u8 = 2;
pub const SSH_FXP_OPEN: u8 = 3;
pub const SSH_FXP_CLOSE: u8 = 4;
pub const SSH_FXP_READ: u8 = 5;
pub const SSH_FXP_WRITE: u8 = 6;
pub const SSH_FXP_LSTAT: u8 = 7;
pub const SSH_FXP_FSTAT: u8 = 8;
pub const SSH_FXP_SETSTAT: u8 = 9;
pub const SSH_FXP_FSETSTAT: u8 = 10;
pub const SSH_FXP_OPENDIR: u8 = 11;
pub const SSH_FXP_READDIR: u8 = 12;
pub const SSH_FXP_REMOVE: u8 = 13;
pub const SSH_FXP_MKDIR: u8 = 14;
pub const SSH_FXP_RMDIR: u8 = 15;
pub const SSH_FXP_REALPATH: u8 = 16;
pub const SSH_FXP_STAT: u8 = 17;
pub const SSH_FXP_RENAME: u8 = 18;
pub const SSH_FXP_READLINK: u8 = 19;
pub const SSH_FXP_SYMLINK: u8 = 20;
pub const SSH_FXP_STATUS: u8 = 101;
pub const SSH_FXP_HANDLE: u8 = 102;
pub const SSH_FXP_DATA: u8 = 103;
pub const SSH_FXP_NAME: u8 = 104;
pub const SSH_FXP_ATTRS: u8 = 105;
pub const SSH_FXP_EXTENDED: u8 = 200;
pub const SSH_FXP_EXTENDED_REPLY: u8 = 201;

pub const SSH_FX_OK: u32 = 0;
pub const SSH_FX_EOF: u32 = 1;
pub const SSH_FX_NO_SUCH_FILE: u32 = 2;
pub const SSH_FX_PERMISSION_DENIED: u32 = 3;
pub const SSH_FX_FAILURE: u32 = 4;
pub const SSH_FX_BAD_MESSAGE: u32 = 5;
pub const SSH_FX_NO_CONNECTION: u32 = 6;
pub const SSH_FX_CONNECTION_LOST: u32 = 7;
pub const SSH_FX_OP_UNSUPPORTED: u32 = 8;

pub const SSH_FILEXFER_ATTR_SIZE: u32 = 0x1;
pub const SSH_FILEXFER_ATTR_UIDGID: u32 = 0x2;
pub const SSH_FILEXFER_ATTR_PERMISSIONS: u32 = 0x4;
pub const SSH_FILEXFER_ATTR_ACMODTIME: u32 = 0x8;
pub const SSH_FILEXFER_ATTR_EXTENDED: u32 = 0x8000_0000;

pub const SSH_FXF_READ: u32 = 0x01;
pub const SSH_FXF_WRITE: u32 = 0x02;
pub const SSH_FXF_APPEND: u32 = 0x04;
pub const SSH_FXF_CREAT: u32 = 0x08;
pub const SSH_FXF_TRUNC: u32 = 0x10;
pub const SSH_FXF_EXCL: u32 = 0x20;

/// statvfs@openssh.com `f_flag` bits.
pub const SSH_FXE_STATVFS_ST_RDONLY: u64 = 0x1;
pub const SSH_FXE_STATVFS_ST_NOSUID: u64 = 0x2;

pub const EXT_POSIX_RENAME: &[u8] = b"posix-rename@openssh.com";
pub const EXT_STATVFS: &[u8] = b"statvfs@openssh.com";
pub const EXT_FSTATVFS: &[u8] = b"fstatvfs@openssh.com";
pub const EXT_HARDLINK: &[u8] = b"hardlink@openssh.com";
pub const EXT_FSYNC: &[u8] = b"fsync@openssh.com";
pub const EXT_LSETSTAT: &[u8] = b"lsetstat@openssh.com";
pub const EXT_LIMITS: &[u8] = b"limits@openssh.com";
pub const EXT_EXPAND_PATH: &[u8] = b"expand-path@openssh.com";
pub const EXT_COPY_DATA: &[u8] = b"copy-data";

/// A server's handles are at most this long (the draft's limit; OpenSSH sends 4 bytes).
pub const MAX_HANDLE: usize = 256;

/// File type bits of `permissions` as servers send them: the traditional Unix values,
/// whatever the local OS's `mode_t` looks like.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_IFSOCK: u32 = 0o140000;
