//! The kernel's ops, each unpacking its arguments and calling a method of `SftpFs`
//! that takes plain values (names.rs, data.rs, dir.rs).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use puffs::{
    AttrReply, Cx, Data, DirBuf, DirPlusBuf, EntryOf, Errno, FileAt, NewNode, Node, OpResult, Open,
    OpenFlags, Ops, RenameFlags, SetAttr, Statvfs,
};

use crate::fs::{OpenDir, OpenFile, SftpFs, SftpNode, ROOT_ID};

#[puffs::ops]
impl Ops for SftpFs {
    type Node = SftpNode;
    type Key = u64;
    type File = OpenFile;
    type Dir = OpenDir;

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

    async fn getattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: Option<&OpenFile>,
    ) -> OpResult<AttrReply> {
        let attr = SftpFs::getattr(self, cx, node, file).await?;
        Ok(AttrReply::with_ttl(attr, self.attr_ttl(node)))
    }

    async fn setattr(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: Option<&OpenFile>,
        set: &SetAttr,
    ) -> OpResult<AttrReply> {
        let attr = SftpFs::setattr(self, cx, node, file, set).await?;
        Ok(AttrReply::with_ttl(attr, self.attr_ttl(node)))
    }

    async fn readlink(&self, cx: &Cx<Self>, node: &Node<Self>) -> OpResult<OsString> {
        SftpFs::readlink(self, cx, node).await
    }

    async fn mkdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        new: NewNode,
    ) -> OpResult<EntryOf<Self>> {
        SftpFs::mkdir(self, cx, dir, name.as_bytes(), new.mode.perm()).await
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

    async fn open(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        flags: OpenFlags,
    ) -> OpResult<Open<OpenFile>> {
        SftpFs::open(self, cx, node, flags).await
    }

    async fn create(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        name: &OsStr,
        new: NewNode,
        flags: OpenFlags,
    ) -> OpResult<(EntryOf<Self>, Open<OpenFile>)> {
        SftpFs::create(self, cx, dir, name.as_bytes(), new.mode.perm(), flags).await
    }

    async fn read(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: &OpenFile,
        offset: u64,
        size: u32,
    ) -> OpResult<Data> {
        Ok(SftpFs::read(self, cx, node, file, offset, size)
            .await?
            .into())
    }

    async fn write(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: &OpenFile,
        offset: u64,
        data: Vec<u8>,
        _flags: OpenFlags,
    ) -> OpResult<u32> {
        SftpFs::write(self, cx, node, file, offset, &data).await
    }

    async fn flush(
        &self,
        cx: &Cx<Self>,
        _node: &Node<Self>,
        file: &OpenFile,
        _lock_owner: u64,
    ) -> OpResult<()> {
        SftpFs::flush(self, cx, file).await
    }

    async fn release(&self, cx: &Cx<Self>, _node: &Node<Self>, file: OpenFile) -> OpResult<()> {
        SftpFs::release(self, cx, file).await;
        Ok(())
    }

    async fn fsync(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        file: &OpenFile,
        _datasync: bool,
    ) -> OpResult<()> {
        SftpFs::fsync(self, cx, node, file).await
    }

    async fn opendir(
        &self,
        cx: &Cx<Self>,
        node: &Node<Self>,
        _flags: OpenFlags,
    ) -> OpResult<Open<OpenDir>> {
        SftpFs::opendir(self, cx, node).await
    }

    async fn readdir(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        open: &OpenDir,
        offset: u64,
        out: &mut DirBuf,
    ) -> OpResult<()> {
        SftpFs::readdir(self, cx, dir, open, offset, out)
    }

    async fn readdirplus(
        &self,
        cx: &Cx<Self>,
        dir: &Node<Self>,
        open: &OpenDir,
        offset: u64,
        out: &mut DirPlusBuf<Self>,
    ) -> OpResult<()> {
        SftpFs::readdirplus(self, cx, dir, open, offset, out)
    }

    async fn copy_file_range(
        &self,
        cx: &Cx<Self>,
        src: FileAt<'_, Self>,
        dst: FileAt<'_, Self>,
        len: u64,
    ) -> OpResult<u32> {
        SftpFs::copy_range(self, cx, src, dst, len).await
    }
}
