//! Files in object storage, through `object_store`: `s3://bucket/prefix`
//! (S3 and compatible servers), `gs://…`, `az://…`, and `file:///path` (a
//! local folder). Credentials, region and endpoint come from the standard
//! environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`). Small files go up in one
//! request; larger ones in parts, a few in flight at once, so memory stays
//! bounded. An object is complete when it appears (a multipart upload
//! completes at once); errand shows it only after its digest is checked.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart,
};

use super::{ByteStream, FilesError, Meter};
use crate::tasks::FileId;

/// Bytes per part of a multipart upload (S3 wants at least 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// An object store and the prefix errand's files live under.
#[derive(Clone)]
pub(super) struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl Objects {
    /// The store `url` names, set up from the environment.
    pub(super) fn open(url: &str) -> Result<Objects, FilesError> {
        let parsed =
            url::Url::parse(url).map_err(|e| FilesError::Config(format!("{url:?}: {e}")))?;
        let prefix = Path::from(parsed.path());
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" => Arc::new(AmazonS3Builder::from_env().with_url(url).build()?),
            "gs" => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .build()?,
            ),
            "az" => Arc::new(MicrosoftAzureBuilder::from_env().with_url(url).build()?),
            "file" => {
                let folder = parsed.path();
                std::fs::create_dir_all(folder)
                    .map_err(|e| FilesError::Config(format!("can't make {folder}: {e}")))?;
                let store = Arc::new(LocalFileSystem::new_with_prefix(folder)?);
                return Ok(Objects {
                    store,
                    prefix: Path::default(),
                });
            }
            other => return Err(FilesError::Config(format!("unknown scheme {other:?}"))),
        };
        Ok(Objects { store, prefix })
    }

    /// Where the file with this id goes.
    pub(super) fn location(&self, id: FileId) -> String {
        self.prefix.clone().join(id.to_string()).to_string()
    }

    /// Writes `body` at `location`: one request if it is small, else a
    /// multipart upload (aborted if anything goes wrong).
    pub(super) async fn write<S, E>(
        &self,
        location: &str,
        mut body: S,
        meter: &mut Meter,
    ) -> Result<(), FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = Path::from(location);
        let mut first = Vec::new();
        while first.len() < PART_BYTES {
            match meter.next(&mut body).await? {
                Some(piece) => first.extend_from_slice(&piece),
                None => {
                    self.store.put(&path, PutPayload::from(first)).await?;
                    return Ok(());
                }
            }
        }
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        writer.put(Bytes::from(first));
        let sent = async {
            while let Some(piece) = meter.next(&mut body).await? {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.put(piece);
            }
            Ok::<(), FilesError>(())
        }
        .await;
        match sent {
            Ok(()) => writer.finish().await.map(|_| ()).map_err(Into::into),
            Err(e) => {
                // Nothing of it may stay: the parts are dropped too.
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Bytes `range` of the object at `location`.
    pub(super) async fn read(
        &self,
        location: &str,
        range: Range<u64>,
    ) -> Result<ByteStream, FilesError> {
        if range.is_empty() {
            return Ok(futures_util::stream::empty().boxed());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..Default::default()
        };
        let got = self.store.get_opts(&Path::from(location), options).await?;
        Ok(got.into_stream().map_err(FilesError::Object).boxed())
    }

    /// Deletes the object at `location` (one already gone is fine).
    pub(super) async fn delete(&self, location: &str) -> Result<(), FilesError> {
        match self.store.delete(&Path::from(location)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
