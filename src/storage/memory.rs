//! An in-memory backend, for unit tests of the layers above storage.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{keys, ObjectMeta, Storage, StorageError, StorageResult};

/// Objects in a `BTreeMap`; lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Mutex<BTreeMap<String, Bytes>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn put(&self, key: &str, data: Bytes) -> StorageResult<()> {
        keys::validate(key)?;
        self.objects().insert(key.to_string(), data);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StorageResult<bool> {
        keys::validate(key)?;
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Ok(false);
        }
        objects.insert(key.to_string(), data);
        Ok(true)
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        keys::validate(key)?;
        self.objects()
            .get(key)
            .cloned()
            .ok_or_else(|| StorageError::NotFound(key.to_string()))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StorageResult<Bytes> {
        let data = self.get(key).await?;
        if range.start > range.end || range.end > data.len() as u64 {
            return Err(StorageError::other(
                format!("read {key}"),
                format!(
                    "range {range:?} is outside the object's {} bytes",
                    data.len()
                ),
            ));
        }
        Ok(data.slice(range.start as usize..range.end as usize))
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        Ok(self
            .objects()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta {
                key: k.clone(),
                size: v.len() as u64,
            })
            .collect())
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        keys::validate(key)?;
        self.objects().remove(key);
        Ok(())
    }

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        keys::validate(key)?;
        Ok(self.objects().get(key).map(|v| ObjectMeta {
            key: key.to_string(),
            size: v.len() as u64,
        }))
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
