//! A command's files. Before it starts, each of its task's inputs is
//! written into `ERRAND_INPUT_DIR`, named as the task names it
//! (`$ERRAND_INPUT_DIR/audio`); once it exits 0, each regular file it left
//! in `ERRAND_OUTPUT_DIR` becomes an output of the task, named as the file,
//! its content type guessed from its extension. Both folders are in the
//! attempt's scratch folder and go with it.

use std::path::Path;

use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use crate::kinds::{TaskContext, TaskError};

fn io(what: &str, e: std::io::Error) -> TaskError {
    TaskError::retryable(format!("{what}: {e}"))
}

/// Writes the task's inputs into `dir`.
pub(super) async fn stage_inputs(ctx: &TaskContext, dir: &Path) -> Result<(), TaskError> {
    for input in ctx.inputs() {
        let mut bytes = ctx.read_input(&input.name).await?;
        let path = dir.join(&input.name);
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| io("could not write an input file", e))?;
        while let Some(piece) = bytes.next().await {
            file.write_all(&piece?)
                .await
                .map_err(|e| io("could not write an input file", e))?;
        }
        file.flush()
            .await
            .map_err(|e| io("could not write an input file", e))?;
    }
    Ok(())
}

/// Stores the files the program left in `dir` as the task's outputs, in
/// name order. Only regular files: anything else there (a folder, a link)
/// fails the task, for it can't be what the program meant to hand back.
pub(super) async fn collect_outputs(ctx: &TaskContext, dir: &Path) -> Result<(), TaskError> {
    let listing = std::fs::read_dir(dir).map_err(|e| io("could not read ERRAND_OUTPUT_DIR", e))?;
    let mut entries: Vec<_> = listing
        .collect::<Result<_, _>>()
        .map_err(|e| io("could not read ERRAND_OUTPUT_DIR", e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| {
            TaskError::permanent(format!(
                "ERRAND_OUTPUT_DIR holds {name:?}, not a UTF-8 name"
            ))
        })?;
        let kind = entry
            .file_type()
            .map_err(|e| io("could not read ERRAND_OUTPUT_DIR", e))?;
        if !kind.is_file() {
            return Err(TaskError::permanent(format!(
                "ERRAND_OUTPUT_DIR may hold only regular files; {name:?} is not one"
            )));
        }
        let file = tokio::fs::File::open(entry.path())
            .await
            .map_err(|e| io("could not open an output file", e))?;
        ctx.put_file(name, content_type_of(name), file).await?;
    }
    Ok(())
}

/// A content type for a file name, by its extension.
fn content_type_of(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("ogg" | "oga") => "audio/ogg",
        Some("flac") => "audio/flac",
        Some("m4a") => "audio/mp4",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("pdf") => "application/pdf",
        Some("json") => "application/json",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv",
        Some("html") => "text/html",
        Some("vtt") => "text/vtt",
        Some("srt") => "application/x-subrip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(content_type_of("talk.OGG"), "audio/ogg");
        assert_eq!(content_type_of("tickets.pdf"), "application/pdf");
        assert_eq!(content_type_of("noextension"), "application/octet-stream");
    }
}
