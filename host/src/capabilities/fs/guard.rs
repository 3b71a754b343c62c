//! warden's `wasi:filesystem/types` and `wasi:filesystem/preopens`: wasmtime-wasi's, with the
//! call's write quotas charged before every write and creation.
//!
//! Every function delegates to wasmtime-wasi's implementation ([`WasiFilesystemCtxView`]).
//! Besides charging, the guard tracks which grant each descriptor belongs to: the preopens
//! are the grants themselves, and a descriptor opened with `open-at` belongs to the grant of
//! the directory it was opened from.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry,
    DirectoryEntryStream, ErrorCode, Filesize, HostDescriptor, HostDirectoryEntryStream,
    MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

use super::quota::{FsQuotas, GrantUsage, QuotaExceeded, QuotaStream};

/// What the guarded filesystem functions work on: wasmtime-wasi's filesystem view and the
/// call's [`FsQuotas`].
pub struct FsView<'a> {
    /// wasmtime-wasi's filesystem state and the call's resource table.
    pub fs: WasiFilesystemCtxView<'a>,
    /// The call's write quotas.
    pub quotas: &'a mut FsQuotas,
}

struct Guarded;

impl HasData for Guarded {
    type Data<'a> = FsView<'a>;
}

/// Replace `wasi:filesystem/types` and `wasi:filesystem/preopens` in `linker` (which must
/// already hold wasmtime-wasi's) with the guarded ones. `view` gives a store's [`FsView`].
pub fn add_quota_guard_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> FsView<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = types::add_to_linker::<T, Guarded>(linker, view)
        .and_then(|()| preopens::add_to_linker::<T, Guarded>(linker, view));
    linker.allow_shadowing(false);
    result
}

fn borrow(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

/// Give back the creation `charged` for when `result` says it failed.
fn settle<R>(charged: Option<Arc<GrantUsage>>, result: FsResult<R>) -> FsResult<R> {
    if let (Some(usage), Err(_)) = (charged, &result) {
        usage.refund_file();
    }
    result
}

fn insufficient_space(_: QuotaExceeded) -> FsError {
    ErrorCode::InsufficientSpace.into()
}

impl FsView<'_> {
    /// Charge one creation under the grant of directory `dir`, when it is `rw`; the charge
    /// is given back by [`settle`] if the creation fails.
    fn charge_creation(&self, dir: &Resource<Descriptor>) -> FsResult<Option<Arc<GrantUsage>>> {
        match self.quotas.grant_of(dir.rep()) {
            Some((_, usage)) if usage.writable() => {
                usage.charge_file().map_err(insufficient_space)?;
                Ok(Some(usage))
            }
            _ => Ok(None),
        }
    }

    /// Wrap the output stream `stream`, opened on descriptor `fd`, in a [`QuotaStream`] when
    /// `fd` belongs to a `rw` grant.
    fn counted(
        &mut self,
        fd: &Resource<Descriptor>,
        stream: Resource<DynOutputStream>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some((_, usage)) = self.quotas.grant_of(fd.rep()) else {
            return Ok(stream);
        };
        if !usage.writable() {
            return Ok(stream);
        }
        let inner = self.fs.table.delete(stream)?;
        let counted: DynOutputStream = Box::new(QuotaStream { inner, usage });
        Ok(self.fs.table.push(counted)?)
    }
}

impl preopens::Host for FsView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let directories = preopens::Host::get_directories(&mut self.fs)?;
        for (position, (fd, guest)) in directories.iter().enumerate() {
            if let Some(grant) = self.quotas.preopen(position, guest) {
                self.quotas.track(fd.rep(), grant);
            }
        }
        Ok(directories)
    }
}

impl types::Host for FsView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        if self.fs.table.get(&err)?.is::<QuotaExceeded>() {
            return Ok(Some(ErrorCode::InsufficientSpace));
        }
        types::Host::filesystem_error_code(&mut self.fs, err)
    }
}

impl HostDescriptor for FsView<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
        len: Filesize,
        advice: Advice,
    ) -> FsResult<()> {
        self.fs.advise(fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.fs.sync_data(fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        self.fs.get_flags(fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType> {
        self.fs.get_type(fd).await
    }

    /// Growing a file is charged like writing the bytes it grows by.
    async fn set_size(&mut self, fd: Resource<Descriptor>, size: Filesize) -> FsResult<()> {
        let usage = match self.quotas.grant_of(fd.rep()) {
            Some((_, usage)) if usage.writable() => usage,
            _ => return self.fs.set_size(fd, size).await,
        };
        let current = self.fs.stat(borrow(&fd)).await?.size;
        let growth = size.saturating_sub(current);
        usage.charge_bytes(growth).map_err(insufficient_space)?;
        let result = self.fs.set_size(fd, size).await;
        if result.is_err() {
            usage.refund_bytes(growth);
        }
        result
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        self.fs.set_times(fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: Filesize,
        offset: Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        self.fs.read(fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: Filesize,
    ) -> FsResult<Filesize> {
        let usage = match self.quotas.grant_of(fd.rep()) {
            Some((_, usage)) if usage.writable() => usage,
            _ => return self.fs.write(fd, buf, offset).await,
        };
        let wanted = buf.len() as u64;
        usage.charge_bytes(wanted).map_err(insufficient_space)?;
        let result = self.fs.write(fd, buf, offset).await;
        // A short or failed write gives back what it did not write.
        let written = result.as_ref().map_or(0, |&n| n.min(wanted));
        usage.refund_bytes(wanted - written);
        result
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DirectoryEntryStream>> {
        self.fs.read_directory(fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.fs.sync(fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let charged = self.charge_creation(&fd)?;
        settle(charged, self.fs.create_directory_at(fd, path).await)
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        self.fs.stat(fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        self.fs.stat_at(fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        self.fs.set_times_at(fd, path_flags, path, atim, mtim).await
    }

    /// A hard link is a new name: charged to the grant it is created in.
    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let charged = self.charge_creation(&new_descriptor)?;
        let result = self
            .fs
            .link_at(fd, old_path_flags, old_path, new_descriptor, new_path)
            .await;
        settle(charged, result)
    }

    /// With `create`, charged one file unless the file exists already (or the open fails).
    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let grant = self.quotas.grant_of(fd.rep()).map(|(grant, _)| grant);
        let exists = !oflags.contains(OpenFlags::CREATE)
            || (!oflags.contains(OpenFlags::EXCLUSIVE)
                && self
                    .fs
                    .stat_at(borrow(&fd), path_flags, path.clone())
                    .await
                    .is_ok());
        let charged = if exists {
            None
        } else {
            self.charge_creation(&fd)?
        };
        let result = self.fs.open_at(fd, path_flags, path, oflags, flags).await;
        let opened = settle(charged, result)?;
        if let Some(grant) = grant {
            self.quotas.track(opened.rep(), grant);
        }
        Ok(opened)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.quotas.forget(fd.rep());
        HostDescriptor::drop(&mut self.fs, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        self.fs.readlink_at(fd, path).await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.fs.remove_directory_at(fd, path).await
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.fs.rename_at(fd, old_path, new_fd, new_path).await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        let charged = self.charge_creation(&fd)?;
        settle(charged, self.fs.symlink_at(fd, src_path, dest_path).await)
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        self.fs.unlink_file_at(fd, path).await
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        self.fs.read_via_stream(fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let file = borrow(&fd);
        let stream = self.fs.write_via_stream(fd, offset)?;
        self.counted(&file, stream)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let file = borrow(&fd);
        let stream = self.fs.append_via_stream(fd)?;
        self.counted(&file, stream)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        self.fs.is_same_object(a, b).await
    }

    async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        self.fs.metadata_hash(fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        self.fs.metadata_hash_at(fd, path_flags, path).await
    }
}

impl HostDirectoryEntryStream for FsView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<DirectoryEntryStream>,
    ) -> FsResult<Option<DirectoryEntry>> {
        self.fs.read_directory_entry(stream).await
    }

    fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}
