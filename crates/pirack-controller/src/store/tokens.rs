//! API tokens. A token is shown once, when made; the store keeps its SHA-256 only,
//! so a copy of the database grants nothing. A token is 32 random bytes, so a plain
//! hash (no salt, no stretching) is enough: there is no dictionary to try.

use super::{Store, StoreError, now_ms, random_hex};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "owner", rename_all = "lowercase")]
pub enum Scope {
    /// Everything.
    Admin,
    /// Only this owner's slots; every other slot is invisible.
    Customer(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub scope: Scope,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn token_row(r: &sqlx::any::AnyRow) -> Result<TokenRow, StoreError> {
    let scope: String = r.try_get("scope")?;
    let owner: Option<String> = r.try_get("owner")?;
    Ok(TokenRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        scope: match (scope.as_str(), owner) {
            ("admin", _) => Scope::Admin,
            ("customer", Some(o)) => Scope::Customer(o),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "token with bad scope `{scope}`"
                )));
            }
        },
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    /// Makes a token; returns its record and the token itself (`pirack_<id>_<secret>`),
    /// which is not kept.
    pub async fn create_token(
        &self,
        name: &str,
        scope: &Scope,
    ) -> Result<(TokenRow, String), StoreError> {
        let io = |e: std::io::Error| StoreError::Invalid(format!("no randomness: {e}"));
        let id = random_hex(6).map_err(io)?;
        let token = format!("pirack_{id}_{}", random_hex(32).map_err(io)?);
        let (kind, owner) = match scope {
            Scope::Admin => ("admin", None),
            Scope::Customer(o) => ("customer", Some(o.clone())),
        };
        let now = now_ms();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO tokens (id, hash, name, scope, owner, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(hash(&token))
        .bind(name)
        .bind(kind)
        .bind(owner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let row = TokenRow {
            id,
            name: name.to_string(),
            scope: scope.clone(),
            created_at: now,
            revoked_at: None,
        };
        Ok((row, token))
    }

    /// The scope of a presented token, if it is one of ours and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenRow>, StoreError> {
        let r = sqlx::query(
            "SELECT id, name, scope, owner, created_at, revoked_at FROM tokens WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash(token))
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(token_row).transpose()
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query("SELECT id, name, scope, owner, created_at, revoked_at FROM tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_row).collect()
    }

    /// Revokes a token by id; false if there is no such live token.
    /// Whether token `id` exists and is not revoked.
    pub async fn token_live(&self, id: &str) -> Result<bool, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    pub async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
