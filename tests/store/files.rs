//! Files' rows: invisible until written whole; renewed while being
//! written; doomed only once no task uses them, no running task is making
//! them, and they expired.

use chrono::Duration;
use errand::store::{FileBytes, FileRowId, NewFile, Store};
use errand::tasks::{AttemptOutcome, FileId, NewTask, TaskId, end_attempt};

use crate::suite::{claim, insert};
use crate::{BACKOFF, common, new_task, t0};

/// A file of alice's, being written until an hour past `t0`.
fn new_file(made_by: Option<TaskId>) -> NewFile {
    NewFile {
        id: FileId::generate(),
        owner: "alice".into(),
        product: Some("shop".into()),
        content_type: "audio/wav".into(),
        bytes: FileBytes::Chunks { chunk_bytes: 4 },
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
        made_by,
    }
}

/// A ready file, unused until a day past `t0`.
async fn ready_file(store: &Store) -> (FileRowId, FileId) {
    let new = new_file(None);
    let row = store.file_insert(&new).await.unwrap();
    let expires = t0() + Duration::hours(24);
    store.file_finish(row, 0, [0; 32], expires).await.unwrap();
    (row, new.id)
}

async fn doomed(store: &Store, hours: i64) -> Vec<FileRowId> {
    let doomed = store.files_doom(t0() + Duration::hours(hours), 100).await;
    doomed.unwrap().into_iter().map(|(row, _)| row).collect()
}

pub async fn a_file_is_visible_only_once_written_and_reads_back_whole(store: &Store) {
    let new = new_file(None);
    let row = store.file_insert(&new).await.unwrap();
    for (seq, piece) in [b"abcd", b"efgh", b"ij\0\0"].into_iter().enumerate() {
        let data = piece.to_vec();
        store
            .file_chunk_insert(row, seq as i64, data)
            .await
            .unwrap();
    }
    assert_eq!(store.file_get(new.id).await.unwrap(), None, "being written");
    let expires = t0() + Duration::hours(24);
    let ready = store.file_finish(row, 10, [7; 32], expires).await.unwrap();
    let ready = ready.expect("it was being written");
    assert_eq!((ready.file.size, ready.file.sha256), (10, [7; 32]));
    assert_eq!(ready.file.expires_at, expires);
    assert_eq!(store.file_get(new.id).await.unwrap(), Some(ready.clone()));
    let chunks = store.file_chunks_read(row, 1, 10).await.unwrap();
    let seqs: Vec<i64> = chunks.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(chunks[0].1, b"efgh");
    // Finished once; and never renewed once ready.
    let again = store.file_finish(row, 10, [7; 32], expires).await.unwrap();
    assert_eq!(again, None);
    assert!(!store.file_renew(row, expires).await.unwrap());
}

pub async fn files_go_only_unused_expired_and_not_being_made(store: &Store) {
    let (upload, upload_id) = ready_file(store).await;
    insert(store, 1).await;
    let running = claim(store, "w", 1, t0()).await.remove(0);
    let output = store
        .file_insert(&new_file(Some(running.id)))
        .await
        .unwrap();
    assert!(doomed(store, 2).await.is_empty(), "an output being made");
    assert!(
        store
            .file_renew(output, t0() + Duration::hours(3))
            .await
            .unwrap()
    );
    // The attempt fails: its half-made output goes once its renewal lapses.
    let failed = AttemptOutcome::Failed {
        message: "x".into(),
        retryable: true,
    };
    let end = end_attempt(1, 3, failed, &BACKOFF, 0.0, t0());
    let ending = common::ending(running.id, 1, &end);
    store.task_end(&ending, t0()).await.unwrap().unwrap();
    assert!(doomed(store, 2).await.is_empty(), "renewed till 3 h");
    assert_eq!(doomed(store, 4).await, [output]);
    assert!(
        !store
            .file_renew(output, t0() + Duration::hours(5))
            .await
            .unwrap()
    );
    assert_eq!(
        store.file_finish(output, 0, [0; 32], t0()).await.unwrap(),
        None
    );
    // Doomed and not yet deleted, it is doomed again by the next pass.
    assert_eq!(doomed(store, 0).await, [output]);
    assert_eq!(store.files_delete(&[output]).await.unwrap(), 1);
    // An upload a task takes stays past its expiry, as long as the task.
    let taking = NewTask {
        inputs: vec![("audio".into(), upload_id)],
        ..new_task("default", 0, t0(), 1)
    };
    let task = common::insert_task(store, &taking).await;
    assert_eq!(task.files.inputs[0].file, upload_id);
    assert!(doomed(store, 48).await.is_empty(), "used by a task");
    let cancelled = store.task_cancel_unstarted(task.id, errand::tasks::Status::Queued, t0());
    cancelled.await.unwrap().unwrap();
    let cutoffs = [(errand::tasks::Status::Cancelled, t0() + Duration::hours(1))];
    assert_eq!(store.task_prune(&cutoffs, 10).await.unwrap(), 1);
    assert_eq!(doomed(store, 0).await, [upload], "its task is gone");
    assert_eq!(store.files_delete(&[upload]).await.unwrap(), 1);
    assert_eq!(store.file_get(upload_id).await.unwrap(), None);
}
