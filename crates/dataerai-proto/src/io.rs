//! File writing shared by the server (chunks received) and the daemon (chunks
//! downloaded): byte pieces as they come off the network are written at their
//! offsets without being copied into a buffer first, a batch of
//! [`WRITE_BATCH`] bytes per blocking call, with one call in flight while the
//! next batch fills (a blocking call per piece would cost a thread hand-off for
//! every few kilobytes).

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes handed to one blocking write call.
pub const WRITE_BATCH: usize = 1024 * 1024;

pub struct PieceWriter {
    file: Arc<std::fs::File>,
    /// Offset of the first byte of `batch`.
    at: u64,
    batch: Vec<Bytes>,
    batch_len: usize,
    in_flight: Option<JoinHandle<io::Result<()>>>,
}

impl PieceWriter {
    /// Write into `file` from offset `at` on.
    pub fn new(file: std::fs::File, at: u64) -> PieceWriter {
        PieceWriter {
            file: Arc::new(file),
            at,
            batch: Vec::new(),
            batch_len: 0,
            in_flight: None,
        }
    }

    /// Queue `piece` after the bytes queued before it.
    pub async fn write(&mut self, piece: Bytes) -> io::Result<()> {
        self.batch_len += piece.len();
        self.batch.push(piece);
        if self.batch_len >= WRITE_BATCH {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Write whatever is queued and wait until every write is done; answers
    /// the file (for an fsync).
    pub async fn finish(mut self) -> io::Result<Arc<std::fs::File>> {
        if self.batch_len > 0 {
            self.send_batch().await?;
        }
        self.wait().await?;
        Ok(self.file)
    }

    async fn wait(&mut self) -> io::Result<()> {
        match self.in_flight.take() {
            Some(write) => write.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    async fn send_batch(&mut self) -> io::Result<()> {
        self.wait().await?;
        let (pieces, file, mut at) = (std::mem::take(&mut self.batch), self.file.clone(), self.at);
        self.at += self.batch_len as u64;
        self.batch_len = 0;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            for p in pieces {
                file.write_all_at(&p, at)?;
                at += p.len() as u64;
            }
            Ok(())
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_land_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'.'; 10]).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut w = PieceWriter::new(file, 3);
        let big = Bytes::from(vec![b'x'; WRITE_BATCH + 5]);
        w.write(Bytes::from_static(b"ab")).await.unwrap();
        w.write(big.clone()).await.unwrap();
        w.write(Bytes::from_static(b"cd")).await.unwrap();
        w.finish().await.unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[..5], b"...ab");
        assert_eq!(&got[5..5 + big.len()], &big[..]);
        assert_eq!(&got[5 + big.len()..], b"cd");
    }
}
