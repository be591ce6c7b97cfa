//! The contents of a regular file: a sparse array of 4 KiB pages, as tmpfs keeps it.
//!
//! A page is absent (a hole: reads as zeros, costs nothing), reserved (allocated by
//! fallocate but never written: reads as zeros, counts in `st_blocks` and against the
//! size limit, and is a hole to SEEK_DATA / SEEK_HOLE, as tmpfs's not-uptodate pages
//! are), or written. Every page counts against the file system's block limit, which the
//! caller passes in as [`Space`].

use std::collections::BTreeMap;

use puffs::Errno;

use crate::space::Space;

/// Page size: the unit of allocation, of `st_blocks` (8 per page) and of statvfs.
pub const PAGE: u64 = 4096;
const PAGE_USIZE: usize = PAGE as usize;

/// `st_blocks` (512-byte units) per page.
pub const BLOCKS_PER_PAGE: u64 = PAGE / 512;

/// The sparse pages of one file, by page index.
#[derive(Debug, Default)]
pub struct Data {
    /// None: reserved by fallocate and not written yet.
    pages: BTreeMap<u64, Option<Box<[u8]>>>,
}

fn zeroed_page() -> Box<[u8]> {
    vec![0u8; PAGE_USIZE].into_boxed_slice()
}

impl Data {
    /// Pages allocated (written or reserved).
    pub fn pages(&self) -> u64 {
        self.pages.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Up to `len` bytes at `off` of a file of `size` bytes: fewer at end of file.
    pub fn read(&self, off: u64, len: u32, size: u64) -> Vec<u8> {
        if off >= size {
            return Vec::new();
        }
        let end = size.min(off.saturating_add(u64::from(len)));
        let mut out = vec![0u8; (end - off) as usize];
        for (&idx, page) in self.pages.range(off / PAGE..=(end - 1) / PAGE) {
            let Some(page) = page else { continue };
            let page_start = idx * PAGE;
            let from = off.max(page_start);
            let to = end.min(page_start + PAGE);
            out[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&page[(from - page_start) as usize..(to - page_start) as usize]);
        }
        out
    }

    /// Writes `buf` at `off`, page by page, allocating pages from `space`. Returns the
    /// bytes written: all of them, or as many as fit before the space ran out
    /// (ENOSPC if not even the first page could be had), like tmpfs.
    pub fn write(&mut self, off: u64, buf: &[u8], space: &Space) -> Result<usize, Errno> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = off + done as u64;
            let idx = pos / PAGE;
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE_USIZE - in_page).min(buf.len() - done);
            let chunk = &buf[done..done + n];
            if let Some(slot) = self.pages.get_mut(&idx) {
                slot.get_or_insert_with(zeroed_page)[in_page..in_page + n].copy_from_slice(chunk);
            } else {
                if !space.alloc_pages(1) {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::ENOSPC)
                    };
                }
                // A whole new page is a copy of the data, with nothing to zero first.
                let page = if n == PAGE_USIZE {
                    Box::from(chunk)
                } else {
                    let mut p = zeroed_page();
                    p[in_page..in_page + n].copy_from_slice(chunk);
                    p
                };
                self.pages.insert(idx, Some(page));
            }
            done += n;
        }
        Ok(done)
    }

    /// The file shrinks to `new_size`: pages wholly past the new end are freed, the tail of a partial last page is zeroed (the page stays).
    pub fn truncate(&mut self, new_size: u64, space: &Space) {
        let keep = new_size.div_ceil(PAGE);
        let gone = self.pages.split_off(&keep);
        space.free_pages(gone.len() as u64);
        if !new_size.is_multiple_of(PAGE) {
            if let Some(Some(page)) = self.pages.get_mut(&(new_size / PAGE)) {
                page[(new_size % PAGE) as usize..].fill(0);
            }
        }
    }

    /// Frees the pages wholly inside `off..off + len` and zeroes the parts of the
    /// partial pages at either edge (FALLOC_FL_PUNCH_HOLE).
    pub fn punch(&mut self, off: u64, len: u64, space: &Space) {
        if len == 0 {
            return;
        }
        let end = off.saturating_add(len);
        let first_full = off.div_ceil(PAGE);
        let end_full = end / PAGE;
        if first_full < end_full {
            let doomed: Vec<u64> = self
                .pages
                .range(first_full..end_full)
                .map(|(&i, _)| i)
                .collect();
            for i in &doomed {
                self.pages.remove(i);
            }
            space.free_pages(doomed.len() as u64);
        }
        // The partial pages at the edges (or the one page the range lies inside).
        let mut zero = |idx: u64| {
            if let Some(Some(page)) = self.pages.get_mut(&idx) {
                let start = idx * PAGE;
                let from = off.max(start) - start;
                let to = end.min(start + PAGE) - start;
                page[from as usize..to as usize].fill(0);
            }
        };
        if !off.is_multiple_of(PAGE) {
            zero(off / PAGE);
        }
        if !end.is_multiple_of(PAGE) {
            zero(end / PAGE);
        }
    }

    /// Reserves every missing page of `off..off + len` (fallocate): all of them or,
    /// when they do not fit, none (ENOSPC). Reserved pages already there become data.
    pub fn allocate(&mut self, off: u64, len: u64, space: &Space) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let first = off / PAGE;
        let last = (off + len - 1) / PAGE;
        let present = self.pages.range(first..=last).count() as u64;
        let missing = (last - first + 1) - present;
        if !space.alloc_pages(missing) {
            return Err(Errno::ENOSPC);
        }
        for idx in first..=last {
            // Like tmpfs, a page fallocated a second time gets initialized: it is data
            // from then on (a new page stays a hole until written).
            self.pages
                .entry(idx)
                .and_modify(|p| {
                    p.get_or_insert_with(zeroed_page);
                })
                .or_insert(None);
        }
        Ok(())
    }

    /// SEEK_DATA: the first offset at or after `off` inside a written page, or ENXIO.
    pub fn seek_data(&self, off: u64, size: u64) -> Result<u64, Errno> {
        if off >= size {
            return Err(Errno::ENXIO);
        }
        let found = self
            .pages
            .range(off / PAGE..)
            .find(|(_, p)| p.is_some())
            .map(|(&idx, _)| (idx * PAGE).max(off));
        match found {
            Some(pos) if pos < size => Ok(pos),
            _ => Err(Errno::ENXIO),
        }
    }

    /// SEEK_HOLE: the first offset at or after `off` not inside a written page (end of
    /// file counts as a hole), or ENXIO past the end.
    pub fn seek_hole(&self, off: u64, size: u64) -> Result<u64, Errno> {
        if off >= size {
            return Err(Errno::ENXIO);
        }
        let mut idx = off / PAGE;
        for (&i, p) in self.pages.range(idx..) {
            if i != idx || p.is_none() {
                break;
            }
            idx += 1;
        }
        Ok((idx * PAGE).max(off).min(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(pages: u64) -> Space {
        Space::new(pages * PAGE, 0)
    }

    #[test]
    fn holes_read_as_zeros_and_cost_nothing() {
        let s = space(100);
        let mut d = Data::default();
        assert_eq!(d.write(10_000, b"abc", &s), Ok(3));
        assert_eq!(d.pages(), 1);
        assert_eq!(s.used_pages(), 1);
        let r = d.read(0, 20_000, 10_003);
        assert_eq!(r.len(), 10_003);
        assert!(r[..10_000].iter().all(|&b| b == 0));
        assert_eq!(&r[10_000..], b"abc");
        assert_eq!(d.read(10_003, 10, 10_003), b"");
        assert_eq!(d.read(9_999, 2, 1 << 40), b"\0a");
    }

    #[test]
    fn write_spanning_pages() {
        let s = space(100);
        let mut d = Data::default();
        let buf: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        assert_eq!(d.write(4000, &buf, &s), Ok(10_000));
        assert_eq!(d.pages(), 4); // pages 0..=3
        assert_eq!(d.read(4000, 10_000, 14_000), buf);
    }

    #[test]
    fn short_write_when_space_runs_out() {
        let s = space(2);
        let mut d = Data::default();
        assert_eq!(d.write(100, &[1u8; 20_000], &s), Ok(2 * 4096 - 100));
        assert_eq!(d.write(3 * 4096, &[1u8; 10], &s), Err(Errno::ENOSPC));
        // Rewriting allocated pages needs no space.
        assert_eq!(d.write(0, &[2u8; 10], &s), Ok(10));
    }

    #[test]
    fn truncate_frees_whole_pages_and_zeroes_the_tail() {
        let s = space(100);
        let mut d = Data::default();
        d.write(0, &[7u8; 3 * 4096], &s).unwrap();
        d.truncate(4096 + 10, &s);
        assert_eq!(d.pages(), 2);
        assert_eq!(s.used_pages(), 2);
        // Growing again shows zeros past the old cut, not the old bytes.
        let r = d.read(4096, 4096, 2 * 4096);
        assert_eq!(&r[..10], &[7u8; 10]);
        assert!(r[10..].iter().all(|&b| b == 0));
        d.truncate(0, &s);
        assert!(d.is_empty());
        assert_eq!(s.used_pages(), 0);
    }

    #[test]
    fn punch_frees_inner_pages_and_zeroes_edges() {
        let s = space(100);
        let mut d = Data::default();
        d.write(0, &[9u8; 4 * 4096], &s).unwrap();
        d.punch(100, 3 * 4096, &s); // 100..12388: pages 1 and 2 whole, 0 and 3 partly
        assert_eq!(d.pages(), 2);
        let r = d.read(0, 4 * 4096, 4 * 4096);
        assert!(r[..100].iter().all(|&b| b == 9));
        assert!(r[100..12388].iter().all(|&b| b == 0));
        assert!(r[12388..].iter().all(|&b| b == 9));
        // A punch inside one page keeps the page.
        d.punch(5, 10, &s);
        assert_eq!(d.pages(), 2);
        assert_eq!(
            d.read(0, 20, 100),
            [&[9u8; 5][..], &[0u8; 10][..], &[9u8; 5][..]].concat()
        );
    }

    #[test]
    fn allocate_is_all_or_nothing_and_reserved_pages_are_holes() {
        let s = space(3);
        let mut d = Data::default();
        d.write(4096, b"x", &s).unwrap();
        assert_eq!(d.allocate(0, 4 * 4096, &s), Err(Errno::ENOSPC));
        assert_eq!(d.pages(), 1);
        assert_eq!(d.allocate(0, 3 * 4096, &s), Ok(()));
        assert_eq!(d.pages(), 3);
        assert_eq!(s.used_pages(), 3);
        let size = 3 * 4096;
        assert_eq!(d.seek_data(0, size), Ok(4096));
        assert_eq!(d.seek_hole(4096, size), Ok(8192));
        assert_eq!(d.seek_hole(0, size), Ok(0));
        assert_eq!(d.seek_data(8192, size), Err(Errno::ENXIO));
        assert_eq!(d.read(0, 10, size), vec![0u8; 10]);
        // Writing into a reserved page makes it data without new space.
        assert_eq!(d.write(8192, b"y", &s), Ok(1));
        assert_eq!(d.seek_data(5000, size), Ok(5000));
        assert_eq!(d.seek_hole(4096, size), Ok(size));
        // Allocating page 0 again turns it into (zeroed) data.
        assert_eq!(d.seek_data(0, size), Ok(4096));
        assert_eq!(d.allocate(0, 1, &s), Ok(()));
        assert_eq!(d.seek_data(0, size), Ok(0));
        assert_eq!(s.used_pages(), 3);
    }

    #[test]
    fn seek_at_and_past_end() {
        let s = space(10);
        let mut d = Data::default();
        d.write(0, b"hello", &s).unwrap();
        assert_eq!(d.seek_data(0, 10), Ok(0));
        assert_eq!(d.seek_hole(0, 10), Ok(10));
        assert_eq!(d.seek_data(9, 10), Ok(9));
        assert_eq!(d.seek_data(10, 10), Err(Errno::ENXIO));
        assert_eq!(d.seek_hole(10, 10), Err(Errno::ENXIO));
        let empty = Data::default();
        assert_eq!(empty.seek_hole(0, 1 << 40), Ok(0));
        assert_eq!(empty.seek_data(0, 1 << 40), Err(Errno::ENXIO));
    }
}
