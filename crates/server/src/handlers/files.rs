//! `/api/2.0/files/*`: rooms, folders, sections, uploads, file info, deletes, operations.

use crate::access::Authed;
use crate::convert;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, LenientJson, LenientQuery, PathId};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::multipart::Field;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use backspace_core::{Caller, Located, Upload};
use backspace_meta::File;
use backspace_storage::ByteStream;
use backspace_types::dto::files::{CreateFolderRequest, CreateRoomRequest, DeleteRequest, ListQuery, UploadQuery};
use backspace_types::{FileId, FolderId, FolderType};
use futures_util::StreamExt;
use std::io;

/// `POST /api/2.0/files/rooms`.
pub async fn create_room(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientJson(req): LenientJson<CreateRoomRequest>,
) -> ApiResult {
    let room = state.core.create_room(&caller, req.title, req.roomtype).await?;
    Ok(Reply::ok(convert::located_folder(&room, &base)))
}

/// `GET /api/2.0/files/rooms`.
pub async fn list_rooms(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientQuery(q): LenientQuery<ListQuery>,
) -> ApiResult {
    let content = state.core.list_rooms(&caller, q).await?;
    Ok(Reply::ok(convert::content(&content, &base)))
}

/// `GET /api/2.0/files/folder/{id}` and `GET /api/2.0/files/rooms/{id}`.
pub async fn get_folder(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    PathId(id): PathId<FolderId>,
) -> ApiResult {
    let folder = state.core.folder(&caller, id).await?;
    Ok(Reply::ok(convert::located_folder(&folder, &base)))
}

/// `POST /api/2.0/files/folder/{parent}`.
pub async fn create_folder(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    PathId(parent): PathId<FolderId>,
    LenientJson(req): LenientJson<CreateFolderRequest>,
) -> ApiResult {
    let folder = state.core.create_folder(&caller, parent, req.title).await?;
    Ok(Reply::ok(convert::located_folder(&folder, &base)))
}

/// `GET /api/2.0/files/{id}`.
pub async fn list_folder(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    PathId(id): PathId<FolderId>,
    LenientQuery(q): LenientQuery<ListQuery>,
) -> ApiResult {
    let content = state.core.list_folder(&caller, id, q).await?;
    Ok(Reply::ok(convert::content(&content, &base)))
}

async fn section(state: &AppState, caller: &Caller, kind: FolderType, q: ListQuery, base: &BaseUrl) -> ApiResult {
    let content = state.core.list_section(caller, kind, q).await?;
    Ok(Reply::ok(convert::content(&content, base)))
}

/// `GET /api/2.0/files/@my`.
pub async fn my(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientQuery(q): LenientQuery<ListQuery>,
) -> ApiResult {
    section(&state, &caller, FolderType::User, q, &base).await
}

/// `GET /api/2.0/files/@trash`.
pub async fn trash(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientQuery(q): LenientQuery<ListQuery>,
) -> ApiResult {
    section(&state, &caller, FolderType::Trash, q, &base).await
}

/// Query of `@root`.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub struct RootQuery {
    #[serde(default, deserialize_with = "backspace_types::lenient::opt_bool")]
    withouttrash: Option<bool>,
}

/// `GET /api/2.0/files/@root`: an array of section listings.
pub async fn roots(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientQuery(q): LenientQuery<ListQuery>,
    LenientQuery(r): LenientQuery<RootQuery>,
) -> ApiResult {
    let all = state
        .core
        .list_roots(&caller, q, r.withouttrash.unwrap_or(false))
        .await?;
    Ok(Reply::ok(
        all.iter().map(|c| convert::content(c, &base)).collect::<Vec<_>>(),
    ))
}

/// `DELETE /api/2.0/files/folder/{id}`.
pub async fn delete_folder(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId<FolderId>,
    LenientJson(req): LenientJson<DeleteRequest>,
) -> ApiResult {
    let ops = state
        .core
        .delete_folder(&caller, id, req.immediately.unwrap_or(false))
        .await?;
    Ok(Reply::ok(ops.iter().map(convert::operation).collect::<Vec<_>>()))
}

/// `DELETE /api/2.0/files/file/{id}`.
pub async fn delete_file(
    State(state): State<AppState>,
    Authed(caller): Authed,
    PathId(id): PathId<FileId>,
    LenientJson(req): LenientJson<DeleteRequest>,
) -> ApiResult {
    let ops = state
        .core
        .delete_file(&caller, id, req.immediately.unwrap_or(false))
        .await?;
    Ok(Reply::ok(ops.iter().map(convert::operation).collect::<Vec<_>>()))
}

/// `GET /api/2.0/files/fileops`.
pub async fn operations(State(state): State<AppState>, Authed(caller): Authed) -> ApiResult {
    let ops = state.core.file_operations(&caller);
    Ok(Reply::ok(ops.iter().map(convert::operation).collect::<Vec<_>>()))
}

/// `GET /api/2.0/files/file/{id}`.
pub async fn get_file(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    PathId(id): PathId<FileId>,
) -> ApiResult {
    let file = state.core.file(&caller, id).await?;
    Ok(Reply::ok(convert::located_file(&file, &base)))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(backspace_core::Error::PayloadTooLarge(e.body_text()))
    } else {
        ApiError::bad_request(format!("the multipart body is malformed: {}", e.body_text()))
    }
}

/// A multipart part as a byte stream, and the pump that feeds it. The part borrows the request,
/// so its chunks pass through a small channel; the consumer runs beside the pump (`join!`), and at
/// most a few chunks are in memory at any time.
pub(crate) fn pump(mut field: Field<'_>) -> (ByteStream, impl std::future::Future<Output = ()> + '_) {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let data: ByteStream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let feed = async move {
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(e.body_text()))).await;
                    break;
                }
            }
        }
    };
    (data, feed)
}

async fn upload_field(
    state: &AppState,
    caller: &Caller,
    folder: FolderId,
    title: String,
    create_new: bool,
    field: Field<'_>,
) -> Result<Located<File>, ApiError> {
    let (data, feed) = pump(field);
    let upload = state.core.upload(
        caller,
        folder,
        Upload {
            title,
            data,
            create_new_if_exist: create_new,
            unlimited: false,
        },
    );
    let (result, ()) = tokio::join!(upload, feed);
    Ok(result?)
}

fn is_part(name: Option<&str>, wanted: &str) -> bool {
    name.is_some_and(|n| {
        let n = n.to_ascii_lowercase();
        n == wanted || n.ends_with(&format!(".{wanted}"))
    })
}

/// Uploads the first file part of a multipart body. The title is the query's `title`, a
/// `title` part that came before the file, or the part's file name.
async fn upload_multipart(
    state: &AppState,
    caller: &Caller,
    folder: FolderId,
    q: UploadQuery,
    mut multipart: Multipart,
) -> Result<Located<File>, ApiError> {
    let mut title = q.title;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if is_part(field.name(), "title") && field.file_name().is_none() {
            let text = field.text().await.map_err(multipart_error)?;
            title = title.or(Some(text));
            continue;
        }
        if !(is_part(field.name(), "file") || field.file_name().is_some()) {
            continue;
        }
        let name = title
            .clone()
            .or_else(|| field.file_name().map(str::to_owned))
            .unwrap_or_default();
        return upload_field(state, caller, folder, name, q.createnewifexist.unwrap_or(false), field).await;
    }
    Err(ApiError::bad_request(
        "the multipart body has no file part (a part named `File`)",
    ))
}

async fn multipart_of(req: Request, state: &AppState) -> Result<Multipart, ApiError> {
    Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad_request(format!("expected a multipart/form-data body: {}", e.body_text())))
}

/// `POST /api/2.0/files/{folder}/upload`: multipart; answers an array of one file.
pub async fn upload(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    PathId(folder): PathId<FolderId>,
    LenientQuery(q): LenientQuery<UploadQuery>,
    req: Request,
) -> ApiResult {
    let multipart = multipart_of(req, &state).await?;
    let file = upload_multipart(&state, &caller, folder, q, multipart).await?;
    Ok(Reply::ok(vec![convert::located_file(&file, &base)]))
}

/// `POST /api/2.0/files/@my/upload`.
pub async fn upload_my(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    LenientQuery(q): LenientQuery<UploadQuery>,
    req: Request,
) -> ApiResult {
    let my = state
        .core
        .list_section(
            &caller,
            FolderType::User,
            ListQuery {
                count: Some(1),
                ..Default::default()
            },
        )
        .await?;
    let multipart = multipart_of(req, &state).await?;
    let file = upload_multipart(&state, &caller, my.current.folder.id, q, multipart).await?;
    Ok(Reply::ok(vec![convert::located_file(&file, &base)]))
}

/// `POST /api/2.0/files/{folder}/insert`: a raw body with `?title=`, or multipart.
pub async fn insert(
    State(state): State<AppState>,
    Authed(caller): Authed,
    base: BaseUrl,
    PathId(folder): PathId<FolderId>,
    LenientQuery(q): LenientQuery<UploadQuery>,
    req: Request,
) -> ApiResult {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let file = if is_multipart {
        let multipart = multipart_of(req, &state).await?;
        upload_multipart(&state, &caller, folder, q, multipart).await?
    } else {
        let title = q.title.clone().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            ApiError(backspace_core::Error::validation(
                "Title",
                "The Title field is required: send ?title=NAME",
            ))
        })?;
        let data: ByteStream = Box::pin(
            req.into_body()
                .into_data_stream()
                .map(|chunk| chunk.map_err(io::Error::other)),
        );
        let up = Upload {
            title,
            data,
            create_new_if_exist: q.createnewifexist.unwrap_or(false),
            unlimited: false,
        };
        state.core.upload(&caller, folder, up).await?
    };
    Ok(Reply::ok(convert::located_file(&file, &base)))
}
