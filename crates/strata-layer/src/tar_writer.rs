//! Writing tar entries as Docker's archive code does: ustar headers with numeric ids only,
//! plus a PAX header for whatever ustar cannot hold (long or non-ASCII names, big numbers,
//! xattrs), its records sorted by key so the bytes never depend on anything but the entry.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Write};

use tar::{EntryType, Header};

const BLOCK: usize = 512;
/// Largest value of an 8-byte octal header field (uid, gid, mode).
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of a 12-byte octal header field (size, mtime).
const MAX_OCTAL_12: u64 = 0o77777777777;
const COPY_BUFFER: usize = 256 * 1024;

/// Xattr names (without `SCHILY.xattr.`) and values.
pub(crate) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Everything a layer tar header says about one entry.
pub(crate) struct EntryHeader<'a> {
    /// The full name, `a/b` for files, `a/b/` for directories.
    pub(crate) name: &'a [u8],
    pub(crate) kind: EntryType,
    /// Permission bits with setuid/setgid/sticky, and the file type bits if wanted.
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) size: u64,
    /// Whole seconds.
    pub(crate) mtime: i64,
    /// Symlink or hardlink target.
    pub(crate) link: &'a [u8],
    pub(crate) dev_major: u32,
    pub(crate) dev_minor: u32,
    /// Xattr names (without `SCHILY.xattr.`) and values, sorted by name.
    pub(crate) xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// Streams tar entries into `W`.
pub(crate) struct TarWriter<W: Write> {
    out: BufWriter<W>,
    buf: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> TarWriter<W> {
        TarWriter {
            out: BufWriter::with_capacity(COPY_BUFFER, out),
            buf: vec![0; COPY_BUFFER],
        }
    }

    /// Writes one entry; `data` must yield at least `entry.size` bytes (only those are read).
    pub(crate) fn append(
        &mut self,
        entry: &EntryHeader<'_>,
        data: Option<&mut dyn Read>,
    ) -> io::Result<()> {
        let pax = pax_records(entry);
        if !pax.is_empty() {
            self.append_pax(entry.name, &pax)?;
        }
        let header = ustar_header(entry)?;
        self.out.write_all(header.as_bytes())?;
        if let Some(data) = data {
            self.copy_exact(data, entry.size)?;
        }
        self.pad(entry.size)
    }

    /// Writes the two zero blocks that end an archive and flushes.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        self.out.flush()
    }

    fn append_pax(&mut self, name: &[u8], records: &BTreeMap<Vec<u8>, Vec<u8>>) -> io::Result<()> {
        let mut data = Vec::new();
        for (key, value) in records {
            // The length prefix counts itself: "<len> <key>=<value>\n".
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while rest + len.to_string().len() != len {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(len.to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(key);
            data.push(b'=');
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut header = Header::new_ustar();
        set_name(&mut header, &pax_header_name(name));
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        header.set_device_major(0)?;
        header.set_device_minor(0)?;
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(&data)?;
        self.pad(data.len() as u64)
    }

    fn copy_exact(&mut self, data: &mut dyn Read, size: u64) -> io::Result<()> {
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file shrank while being written: {left} of {size} bytes missing"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.out.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }
}

/// The PAX records an entry needs, keyed and so ordered by record name.
fn pax_records(e: &EntryHeader<'_>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut pax = BTreeMap::new();
    if e.name.len() > 100 || !e.name.is_ascii() {
        pax.insert(b"path".to_vec(), e.name.to_vec());
    }
    if e.link.len() > 100 || !e.link.is_ascii() {
        pax.insert(b"linkpath".to_vec(), e.link.to_vec());
    }
    if e.uid > MAX_OCTAL_8 {
        pax.insert(b"uid".to_vec(), e.uid.to_string().into_bytes());
    }
    if e.gid > MAX_OCTAL_8 {
        pax.insert(b"gid".to_vec(), e.gid.to_string().into_bytes());
    }
    if e.size > MAX_OCTAL_12 {
        pax.insert(b"size".to_vec(), e.size.to_string().into_bytes());
    }
    if e.mtime < 0 || e.mtime as u64 > MAX_OCTAL_12 {
        pax.insert(b"mtime".to_vec(), e.mtime.to_string().into_bytes());
    }
    for (name, value) in e.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax.insert(key, value.clone());
    }
    pax
}

/// The ustar header; fields that overflow are 0 there and carried by PAX records instead.
fn ustar_header(e: &EntryHeader<'_>) -> io::Result<Header> {
    let fit8 = |v: u64| if v > MAX_OCTAL_8 { 0 } else { v };
    let mut header = Header::new_ustar();
    set_name(&mut header, e.name);
    header.set_entry_type(e.kind);
    header.set_mode(e.mode);
    header.set_uid(fit8(e.uid));
    header.set_gid(fit8(e.gid));
    header.set_size(if e.size > MAX_OCTAL_12 { 0 } else { e.size });
    header.set_mtime(if e.mtime < 0 || e.mtime as u64 > MAX_OCTAL_12 {
        0
    } else {
        e.mtime as u64
    });
    let link = &e.link[..e.link.len().min(100)];
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    header.set_device_major(e.dev_major)?;
    header.set_device_minor(e.dev_minor)?;
    header.set_cksum();
    Ok(header)
}

/// Writes up to 100 bytes of `name` into the name field; longer names ride in PAX `path`.
fn set_name(header: &mut Header, name: &[u8]) {
    let name = &name[..name.len().min(100)];
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name);
}

/// `dir/PaxHeaders.0/base`, the name Go's writer gives a PAX header.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let (dir, base) = match trimmed.iter().rposition(|b| *b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let mut out = dir.to_vec();
    out.extend_from_slice(b"PaxHeaders.0/");
    out.extend_from_slice(base);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &[u8]) -> EntryHeader<'_> {
        EntryHeader {
            name,
            kind: EntryType::Regular,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 3,
            mtime: 1_700_000_000,
            link: b"",
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
        }
    }

    #[test]
    fn pax_record_length_counts_itself() {
        // 9 + 1 + 1 + 1 + 1 = "9 a=bcde\n" is 9 bytes; 99 vs 100 needs one more digit.
        for value_len in [0usize, 1, 4, 90, 91, 92, 93, 94, 95, 96, 990, 995] {
            let mut w = TarWriter::new(Vec::new());
            let mut pax = BTreeMap::new();
            pax.insert(b"k".to_vec(), vec![b'v'; value_len]);
            w.append_pax(b"x", &pax).unwrap();
            w.out.flush().unwrap();
            let out = w.out.into_inner().unwrap();
            let data = &out[BLOCK..];
            let text = String::from_utf8_lossy(data);
            let (len, _) = text.split_once(' ').unwrap();
            let len: usize = len.parse().unwrap();
            assert_eq!(data[len - 1], b'\n', "value_len {value_len}");
            assert_eq!(len, value_len + 4 + len.to_string().len());
        }
    }

    #[test]
    fn headers_read_back_through_the_tar_crate() {
        let long = vec![b'n'; 300];
        let xattrs = vec![(b"user.k".to_vec(), b"v\0w".to_vec())];
        let mut big = file(&long);
        big.uid = 1 << 31;
        big.gid = 70_000_000;
        big.xattrs = &xattrs;
        let mut w = TarWriter::new(Vec::new());
        w.append(&big, Some(&mut &b"abcdef"[..])).unwrap();
        w.append(&file(b"short"), Some(&mut &b"xyz"[..])).unwrap();
        w.out.flush().unwrap();
        let mut bytes = w.out.into_inner().unwrap();
        bytes.extend_from_slice(&[0; 1024]);
        assert_eq!(bytes.len() % BLOCK, 0);

        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().unwrap();
        let mut first = entries.next().unwrap().unwrap();
        assert_eq!(&*first.path_bytes(), &long[..]);
        assert_eq!(first.header().uid().unwrap(), 1 << 31);
        assert_eq!(first.header().gid().unwrap(), 70_000_000);
        let pax: Vec<(String, Vec<u8>)> = first
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.key().unwrap().to_string(), r.value_bytes().to_vec())
            })
            .collect();
        assert!(pax.contains(&("SCHILY.xattr.user.k".to_string(), b"v\0w".to_vec())));
        let mut data = String::new();
        first.read_to_string(&mut data).unwrap();
        assert_eq!(data, "abc");
        let second = entries.next().unwrap().unwrap();
        assert_eq!(&*second.path_bytes(), b"short");
        assert_eq!(second.header().mtime().unwrap(), 1_700_000_000);
        assert!(entries.next().is_none());
    }

    #[test]
    fn short_data_is_an_error() {
        let mut w = TarWriter::new(Vec::new());
        let err = w.append(&file(b"f"), Some(&mut &b"ab"[..])).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn pax_header_names() {
        let cases: &[(&str, &str)] = &[
            ("a", "PaxHeaders.0/a"),
            ("d/e/f", "d/e/PaxHeaders.0/f"),
            ("d/e/", "d/PaxHeaders.0/e"),
        ];
        for (name, want) in cases {
            assert_eq!(pax_header_name(name.as_bytes()), want.as_bytes(), "{name}");
        }
    }
}
