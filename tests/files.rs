//! Rooms, folders and files through the HTTP API.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn uploads_download_byte_for_byte() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Data").await;
    let data = bytes(3 * 1024 * 1024 + 17, 42);
    let (status, up) = s.upload(&owner, room, "blob.bin", data.clone()).await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["count"], 1);
    let file = &up["response"][0];
    assert_eq!(file["title"], "blob.bin");
    assert_eq!(file["folderId"], room);
    assert_eq!(file["version"], 1);
    assert_eq!(file["pureContentLength"], data.len());
    assert_eq!(file["contentLength"], "3 MB");
    assert_eq!(file["fileExst"], ".bin");
    let id = file["id"].as_i64().unwrap();
    assert_eq!(
        file["viewUrl"],
        s.url(&format!("/filehandler.ashx?action=download&fileid={id}"))
    );
    let (status, got) = s.download(&owner, id).await;
    assert_eq!(status, 200);
    assert!(got == data, "downloaded bytes differ from the upload");

    // The raw-body insert of the api-tests, and an empty file.
    let resp = s
        .http
        .post(s.url(&format!("/api/2.0/files/{room}/insert?title=raw.dat")))
        .headers(owner.headers())
        .body(bytes(70_000, 7))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    let raw_id = v["response"]["id"].as_i64().unwrap();
    assert_eq!(s.download(&owner, raw_id).await.1, bytes(70_000, 7));
    let (status, up) = s.upload(&owner, room, "empty.txt", Vec::new()).await;
    assert_eq!(status, 200, "{up}");
    assert!(
        up["response"][0].get("pureContentLength").is_none(),
        "0 is omitted: {up}"
    );

    let (status, info) = s.get(&format!("/api/2.0/files/file/{id}"), &owner).await;
    assert_eq!(status, 200);
    assert_eq!(info["response"]["title"], "blob.bin");
    assert_eq!(info["response"]["rootFolderType"], 14);
}

#[tokio::test]
async fn same_title_makes_a_version_or_a_numbered_copy() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Versions").await;
    let (_, v1) = s.upload(&owner, room, "report.docx", b"one".to_vec()).await;
    let (_, v2) = s.upload(&owner, room, "report.docx", b"two".to_vec()).await;
    assert_eq!(v1["response"][0]["id"], v2["response"][0]["id"]);
    assert_eq!(v2["response"][0]["version"], 2);
    let id = v2["response"][0]["id"].as_i64().unwrap();
    assert_eq!(s.download(&owner, id).await.1, b"two");
    let part = reqwest::multipart::Part::bytes(b"three".to_vec()).file_name("report.docx");
    let resp = s
        .http
        .post(s.url(&format!("/api/2.0/files/{room}/upload?createNewIfExist=true")))
        .headers(owner.headers())
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["response"][0]["title"], "report (1).docx");
    // Replaced versions leave no blob behind: two files, two blobs.
    let blobs = count_files(&s.data_dir.join("files/portals"));
    assert_eq!(blobs, 2);
}

#[tokio::test]
async fn folders_list_page_and_delete() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Tree").await;
    let (status, folder) = s
        .post(
            &format!("/api/2.0/files/folder/{room}"),
            &owner,
            json!({"title": "Sub"}),
        )
        .await;
    assert_eq!(status, 200, "{folder}");
    assert_eq!(folder["response"]["parentId"], room);
    let sub = folder["response"]["id"].as_i64().unwrap();
    for i in 0..3 {
        s.upload(&owner, sub, &format!("f{i}.txt"), vec![i; 10]).await;
    }
    let (status, list) = s
        .get(&format!("/api/2.0/files/{sub}?count=2&startIndex=1"), &owner)
        .await;
    assert_eq!(status, 200);
    let content = &list["response"];
    assert_eq!(content["total"], 3);
    assert_eq!(content["count"], 2);
    assert_eq!(content["files"][0]["title"], "f1.txt");
    assert_eq!(content["folders"], json!([]));
    let parts: Vec<_> = content["pathParts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].clone())
        .collect();
    assert_eq!(parts, vec![json!("Rooms"), json!("Tree"), json!("Sub")]);
    assert_eq!(content["current"]["id"], sub);

    // Delete a file to the trash, then the folder for good.
    let file = content["files"][0]["id"].as_i64().unwrap();
    let (status, ops) = s
        .call(
            Method::DELETE,
            &format!("/api/2.0/files/file/{file}"),
            &owner,
            Some(json!({"deleteAfter": false, "immediately": false})),
        )
        .await;
    assert_eq!(status, 200, "{ops}");
    assert_eq!(ops["response"][0]["Operation"], 2);
    assert_eq!(ops["response"][0]["finished"], true);
    let (_, polled) = s.get("/api/2.0/files/fileops", &owner).await;
    let last = polled["response"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["finished"].clone(),
            last["progress"].clone(),
            last["processed"].clone()
        ),
        (json!(true), json!(100), json!("1"))
    );
    let (_, trash) = s.get("/api/2.0/files/@trash", &owner).await;
    assert_eq!(trash["response"]["files"][0]["title"], "f1.txt");
    assert_eq!(
        s.download(&owner, file).await.0,
        200,
        "a trashed file is still readable by its owner"
    );

    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/2.0/files/folder/{sub}"),
            &owner,
            Some(json!({"immediately": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s.get(&format!("/api/2.0/files/{sub}"), &owner).await;
    assert_error(status, &body, 404, "The required folder was not found");
    let (_, my) = s.get("/api/2.0/files/@my", &owner).await;
    assert_eq!(my["response"]["current"]["rootFolderType"], 5);
    let (_, roots) = s.get("/api/2.0/files/@root", &owner).await;
    assert_eq!(roots["count"], 3);
}

#[tokio::test]
async fn room_access_follows_roles() {
    let s = TestServer::spawn().await;
    let owner = Auth::bearer(&s.owner_token().await);
    let room = s.room(&owner, "Owners").await;
    let (_, room_admin) = s.person(&owner, "RoomAdmin").await;
    let (_, user) = s.person(&owner, "User").await;
    let (_, guest) = s.person(&owner, "Guest").await;
    for auth in [&user, &guest] {
        let (status, body) = s
            .post("/api/2.0/files/rooms", auth, json!({"title": "mine", "roomType": 5}))
            .await;
        assert_error(status, &body, 403, "You don't have enough permission to create");
    }
    // Another person's room is not visible to a room admin who is not in it.
    let (_, rooms) = s.get("/api/2.0/files/rooms", &room_admin).await;
    assert_eq!(rooms["response"]["total"], 0);
    let (status, body) = s.get(&format!("/api/2.0/files/{room}"), &room_admin).await;
    assert_error(
        status,
        &body,
        403,
        "You don't have enough permission to view the folder content",
    );
    let (status, _) = s.upload(&room_admin, room, "x.txt", b"x".to_vec()).await;
    assert_eq!(status, 403);
    let own = s.room(&room_admin, "Mine").await;
    let (status, _) = s.upload(&room_admin, own, "x.txt", b"x".to_vec()).await;
    assert_eq!(status, 200);
    let (_, rooms) = s.get("/api/2.0/files/rooms", &owner).await;
    assert_eq!(rooms["response"]["total"], 2, "admins see every room");
    let (_, rooms) = s.get("/api/2.0/files/rooms?type=5&filterValue=MIN", &owner).await;
    assert_eq!(rooms["response"]["total"], 1);
}
