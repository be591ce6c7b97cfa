//! The kernel's ops, each unpacking its arguments and calling a method of `SftpFs`
//! that takes plain values (names.rs, data.rs, dir.rs).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use puffs::{
    Attr, Cx, DirBuf, DirPlusBuf, EntryOf, Errno, Node, OpResult, Opened, Ops, RenameFlags,
    SetAttr, Statvfs,
};

use crate::fs::{SftpFs, SftpNode, ROOT_ID};

#[puffs::ops]
impl Ops for SftpFs {
    type Node = SftpNode;
    type Key = u64;

    fn root(&self) -> (u64, SftpNode) {
        (ROOT_ID, self.root_node())
    }

    fn reclaim(&self, node: &Node<Self>) {
        self.forgotten(node);
    }

    async fn unmount(&self, _cx: &Cx<Self>) -> OpResult<()> {
        self.disconnect();
        Ok(())
    }

    async fn statvfs(&self, cx: &Cx<Self>) -> OpResult<Statvfs> {
        SftpFs::statvfs(self, cx).await
    }

    async fn lookup(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        SftpFs::lookup(self, cx, dir, name.as_bytes()).await
    }

    async fn getattr(&self, cx: &Cx<Self>, node: &Node<Self>, fh: Option<u64>) -> OpResult<Attr> {
        SftpFs::getattr(self, cx, node, fh).await
    }

    async fn setattr(&self, cx: &Cx<Self>, node: &Node<Self>, set: &SetAttr) -> OpResult<Attr> {
        SftpFs::setattr(self, cx, node, set).await
    }

    async fn readlink(&self, cx: &Cx<Self>, node: &Node<Self>) -> OpResult<OsString> {
        SftpFs::readlink(self, cx, node).await
    }

    async fn mkdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        mode: u32,
        _umask: u32,
    ) -> OpResult<EntryOf<Self>> {
        SftpFs::mkdir(self, cx, dir, name.as_bytes(), mode).await
    }

    async fn unlink(&self, cx: &Cx<Self>, dir: &Node<Self>, name: &OsStr) -> OpResult<()> {
        SftpFs::unlink(self, cx, dir, name.as_bytes()).await
    }

    async fn rmdir(&self, cx: &Cx<Self>, dir: &Node<Self>, name: &OsStr) -> OpResult<()> {
        SftpFs::rmdir(self, cx, dir, name.as_bytes()).await
    }

    async fn symlink(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        target: &Path,
    ) -> OpResult<EntryOf<Self>> {
        let target = target.as_os_str().as_bytes();
        SftpFs::symlink(self, cx, dir, name.as_bytes(), target).await
    }

    async fn rename(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        newdir: &Node<Self>,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> OpResult<()> {
        if flags.exchange || flags.whiteout {
            return Err(Errno::EINVAL);
        }
        let from = (&**dir, name.as_bytes());
        let to = (&**newdir, newname.as_bytes());
        SftpFs::rename(self, cx, from, to, flags.noreplace).await
    }

    async fn link(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        newdir: &Node<Self>,
        newname: &OsStr,
    ) -> OpResult<EntryOf<Self>> {
        SftpFs::link(self, cx, node, newdir, newname.as_bytes()).await
    }

    async fn open(&self, cx: &Cx<Self>, node: &Node<Self>, flags: i32) -> OpResult<Opened> {
        SftpFs::open(self, cx, node, flags).await
    }

    async fn create(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
    ) -> OpResult<(EntryOf<Self>, Opened)> {
        SftpFs::create(self, cx, dir, name.as_bytes(), mode, flags).await
    }

    async fn read(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> OpResult<Vec<u8>> {
        SftpFs::read(self, cx, node, fh, offset, size).await
    }

    async fn write(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        fh: u64,
        offset: u64,
        data: &[u8],
        _flags: i32,
    ) -> OpResult<u32> {
        SftpFs::write(self, cx, node, fh, offset, data).await
    }

    async fn release(
        &self,
        _cx: &Cx<Self>,
        _node: &Node<Self>,
        fh: u64,
        _flags: i32,
    ) -> OpResult<()> {
        SftpFs::release(self, fh).await;
        Ok(())
    }

    async fn fsync(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        fh: u64,
        _datasync: bool,
    ) -> OpResult<()> {
        SftpFs::fsync(self, cx, node, fh).await
    }

    async fn opendir(&self, cx: &Cx<Self>, node: &Node<Self>, _flags: i32) -> OpResult<Opened> {
        SftpFs::opendir(self, cx, node).await
    }

    async fn readdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        fh: u64,
        offset: u64,
        out: &mut DirBuf,
    ) -> OpResult<()> {
        SftpFs::readdir(self, cx, dir, fh, offset, out)
    }

    async fn readdirplus(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        fh: u64,
        offset: u64,
        out: &mut DirPlusBuf<Self>,
    ) -> OpResult<()> {
        SftpFs::readdirplus(self, cx, dir, fh, offset, out)
    }

    async fn releasedir(&self, _cx: &Cx<Self>, _node: &Node<Self>, fh: u64) -> OpResult<()> {
        SftpFs::releasedir(self, fh);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_file_range(
        &self,
        cx: &Cx<Self>,
        src: &Node<Self>,
        fh_in: u64,
        offset_in: u64,
        dst: &Node<Self>,
        fh_out: u64,
        offset_out: u64,
        len: u64,
    ) -> OpResult<u32> {
        let from = (src, fh_in, offset_in);
        let to = (dst, fh_out, offset_out);
        SftpFs::copy_range(self, cx, from, to, len).await
    }
}
