//! Files kept in the task database, in chunks of `files.chunk_bytes`: what
//! every API node and worker reaches with nothing else to run. A write
//! holds one chunk in memory; a read, one chunk at a time.

use std::ops::Range;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _, stream};

use super::{ByteStream, FilesError, Meter};
use crate::store::{FileRowId, Store};

/// Writes `body` as chunks of file `row`.
pub(super) async fn write<S, E>(
    store: &Store,
    row: FileRowId,
    chunk_bytes: usize,
    mut body: S,
    meter: &mut Meter,
) -> Result<(), FilesError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut chunk = Vec::with_capacity(chunk_bytes);
    let mut seq = 0;
    while let Some(piece) = meter.next(&mut body).await? {
        let mut rest = &piece[..];
        while !rest.is_empty() {
            let take = (chunk_bytes - chunk.len()).min(rest.len());
            chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if chunk.len() == chunk_bytes {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_bytes));
                store.file_chunk_insert(row, seq, full).await?;
                seq += 1;
            }
        }
    }
    if !chunk.is_empty() {
        store.file_chunk_insert(row, seq, chunk).await?;
    }
    Ok(())
}

/// Bytes `range` of file `row`, a chunk at a time.
pub(super) fn read(
    store: Store,
    row: FileRowId,
    chunk_bytes: usize,
    range: Range<u64>,
) -> ByteStream {
    let chunk = chunk_bytes as u64;
    stream::try_unfold((store, range), move |(store, range)| async move {
        if range.is_empty() {
            return Ok(None);
        }
        let seq = range.start / chunk;
        let found = store.file_chunks_read(row, seq as i64, 1).await?;
        let Some((_, data)) = found.into_iter().next() else {
            return Err(FilesError::Source(format!(
                "chunk {seq} of the file is missing"
            )));
        };
        let offset = (range.start - seq * chunk) as usize;
        let take = (data.len().saturating_sub(offset) as u64).min(range.end - range.start);
        if take == 0 {
            return Err(FilesError::Source(format!(
                "chunk {seq} of the file is short"
            )));
        }
        let bytes = Bytes::from(data).slice(offset..offset + take as usize);
        Ok(Some((bytes, (store, range.start + take..range.end))))
    })
    .boxed()
}
