//! The object store against a real S3 server (s3s-fs in CI, which checks SigV4 signatures).
//! `BACKSPACE_TEST_S3_ENDPOINT`, `_BUCKET`, `_ACCESS_KEY`, `_SECRET_KEY` name it; CI sets
//! `BACKSPACE_REQUIRE_S3=1`, which makes a missing server a failure, not a skip.

use backspace_storage::{BlobKey, BlobStore, ByteStream, ObjectStore, S3Config, StorageError};
use bytes::Bytes;
use futures_util::StreamExt;

fn config() -> Option<S3Config> {
    let var = |n: &str| std::env::var(format!("BACKSPACE_TEST_S3_{n}")).ok();
    match (var("ENDPOINT"), var("BUCKET"), var("ACCESS_KEY"), var("SECRET_KEY")) {
        (Some(endpoint), Some(bucket), Some(access_key), Some(secret_key)) => Some(S3Config {
            bucket,
            endpoint,
            region: "us-east-1".into(),
            access_key,
            secret_key,
            root: format!("test-{}", uuid_like()),
            ..S3Config::default()
        }),
        _ => {
            assert!(
                std::env::var("BACKSPACE_REQUIRE_S3").is_err(),
                "BACKSPACE_REQUIRE_S3 is set but no S3 server is named"
            );
            None
        }
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn stream(parts: Vec<std::io::Result<Bytes>>) -> ByteStream {
    Box::pin(futures_util::stream::iter(parts))
}

async fn read(s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = s;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

#[tokio::test]
async fn objects_round_trip_and_failed_puts_leave_nothing() {
    let Some(cfg) = config() else { return };
    let store = ObjectStore::s3(&cfg).unwrap();
    store.check().await.unwrap();
    let key = BlobKey::new("portals/1/files/a").unwrap();
    // 20 MiB: a multipart upload of three parts.
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let parts = big.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    assert_eq!(store.put(&key, stream(parts)).await.unwrap(), big.len() as u64);
    assert_eq!(store.size(&key).await.unwrap(), Some(big.len() as u64));
    assert!(read(store.get(&key).await.unwrap()).await == big);
    assert_eq!(read(store.get_range(&key, 10..20).await.unwrap()).await, &big[10..20]);
    assert_eq!(
        store.list(&BlobKey::new("portals/1").unwrap()).await.unwrap(),
        vec![key.clone()]
    );

    let broken = BlobKey::new("portals/1/files/broken").unwrap();
    let err = store
        .put(
            &broken,
            stream(vec![
                Ok(Bytes::from(vec![1u8; 9 << 20])),
                Err(std::io::Error::other("client went away")),
            ]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Input { .. }), "{err}");
    assert_eq!(store.size(&broken).await.unwrap(), None, "a failed put left an object");

    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    assert!(matches!(store.get(&key).await, Err(StorageError::NotFound(_))));
}

#[tokio::test]
async fn wrong_credentials_and_a_missing_bucket_fail_clearly() {
    let Some(cfg) = config() else { return };
    let wrong = ObjectStore::s3(&S3Config {
        secret_key: "wrong".into(),
        ..cfg.clone()
    })
    .unwrap();
    let err = wrong.check().await.unwrap_err().to_string();
    assert!(err.contains("cannot be listed"), "{err}");
    let missing = ObjectStore::s3(&S3Config {
        bucket: "no-such-bucket".into(),
        ..cfg
    })
    .unwrap();
    let err = missing.check().await.unwrap_err().to_string();
    assert!(err.contains("no-such-bucket"), "{err}");
}
