//! [`Compression`]: how the tar stream is compressed, and the codecs behind it.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::consts::{GZIP_EXTENSION, GZIP_LEVEL, ZSTD_EXTENSION, ZSTD_LEVEL};

/// How the archive's tar stream is compressed. zstd is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// zstd, level 3, with the frame checksum.
    #[default]
    Zstd,
    /// gzip (deflate), level 6.
    Gzip,
}

impl Compression {
    /// The file name extension, without the leading dot: `tar.zst` or `tar.gz`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Zstd => ZSTD_EXTENSION,
            Self::Gzip => GZIP_EXTENSION,
        }
    }

    /// The compression a file name announces by its `.tar.zst` or `.tar.gz` suffix, compared
    /// case-insensitively. `None` for any other name.
    pub fn from_file_name(name: &str) -> Option<Self> {
        [Self::Zstd, Self::Gzip]
            .into_iter()
            .find(|c| has_suffix(name, c.extension()))
    }

    pub(crate) fn compressor<W: Write>(self, out: W) -> io::Result<Compressor<W>> {
        Ok(match self {
            Self::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                encoder.include_checksum(true)?;
                Compressor::Zstd(encoder)
            }
            Self::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL))),
        })
    }

    pub(crate) fn decompressor<R: Read>(self, input: R) -> io::Result<Decompressor<R>> {
        Ok(match self {
            Self::Zstd => Decompressor::Zstd(zstd::stream::read::Decoder::new(input)?),
            Self::Gzip => Decompressor::Gzip(flate2::bufread::GzDecoder::new(BufReader::new(input))),
        })
    }
}

/// Whether `name` ends with `.` followed by `extension`, ignoring ASCII case.
fn has_suffix(name: &str, extension: &str) -> bool {
    let (name, extension) = (name.as_bytes(), extension.as_bytes());
    name.len() > extension.len()
        && name[name.len() - extension.len() - 1] == b'.'
        && name[name.len() - extension.len()..].eq_ignore_ascii_case(extension)
}

/// The compressing writer under the tar builder.
pub(crate) enum Compressor<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
}

impl<W: Write> Compressor<W> {
    /// Ends the compressed stream and hands back the inner writer (not yet flushed).
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Self::Zstd(encoder) => encoder.finish(),
            Self::Gzip(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Zstd(encoder) => encoder.write(buf),
            Self::Gzip(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Zstd(encoder) => encoder.flush(),
            Self::Gzip(encoder) => encoder.flush(),
        }
    }
}

/// The decompressing reader under the tar archive.
pub(crate) enum Decompressor<R: Read> {
    Zstd(zstd::stream::read::Decoder<'static, BufReader<R>>),
    Gzip(flate2::bufread::GzDecoder<BufReader<R>>),
}

impl<R: Read> Decompressor<R> {
    /// Whether input bytes remain after the compressed stream ended. Call once the decompressed
    /// stream has been read to its end. zstd reads every frame up to the end of its input (and
    /// fails on anything that is not a frame); gzip stops after one member, so what follows it is
    /// looked at here.
    pub(crate) fn has_trailing_input(self) -> io::Result<bool> {
        match self {
            Self::Zstd(_) => Ok(false),
            Self::Gzip(decoder) => Ok(!decoder.into_inner().fill_buf()?.is_empty()),
        }
    }
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Zstd(decoder) => decoder.read(buf),
            Self::Gzip(decoder) => decoder.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(Compression::Zstd.extension(), "tar.zst");
        assert_eq!(Compression::Gzip.extension(), "tar.gz");
        assert_eq!(Compression::default(), Compression::Zstd);
    }

    #[test]
    fn from_file_name() {
        assert_eq!(Compression::from_file_name("backup.tar.zst"), Some(Compression::Zstd));
        assert_eq!(Compression::from_file_name("BACKUP.TAR.ZST"), Some(Compression::Zstd));
        assert_eq!(
            Compression::from_file_name("a/b/portal-1.tar.gz"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_file_name("x.Tar.Gz"), Some(Compression::Gzip));
        assert_eq!(Compression::from_file_name("backup.tar"), None);
        assert_eq!(Compression::from_file_name("backup.zst"), None);
        assert_eq!(Compression::from_file_name("backup.tgz"), None);
        assert_eq!(Compression::from_file_name("backuptar.gz"), None);
        assert_eq!(Compression::from_file_name("tar.gz"), None);
        assert_eq!(Compression::from_file_name(""), None);
        assert_eq!(Compression::from_file_name("é.tar.zst"), Some(Compression::Zstd));
        assert_eq!(Compression::from_file_name("ééé"), None);
    }
}
