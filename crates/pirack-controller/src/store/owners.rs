//! The customers the site knows: the inventory's `owners` (recorded at every
//! controller start) and those staff add (`pirack owner add`). Slots are
//! provisioned, and customer tokens made, for these alone, so a typing error
//! cannot mint a tenant.

use super::{Store, StoreError, now_ms};

/// Where an owner came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Inventory,
    Staff,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Inventory => "inventory",
            Source::Staff => "staff",
        }
    }
}

impl Store {
    /// Records `name` as a known owner (nothing if it is already known); an empty
    /// or untrimmed name is refused.
    pub async fn add_owner(&self, name: &str, source: Source) -> Result<(), StoreError> {
        if name.is_empty() || name.trim() != name || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "`{name}` is not an owner's name"
            )));
        }
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO owners (name, source, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(source.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn has_owner(&self, name: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM owners WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Every known owner, by name.
    pub async fn owners(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT name FROM owners ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }
}
