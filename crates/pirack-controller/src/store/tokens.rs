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
        self.mirror.add_token(hash(&token), row.clone());
        Ok((row, token))
    }

    /// The scope of a presented token, if it is one of ours and not revoked: from
    /// the mirror, else (a token made a moment ago by another process) from the
    /// store, at most a few lookups a second.
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenRow>, StoreError> {
        let hash = hash(token);
        if let Some(row) = self.mirror.token(&hash) {
            return Ok(Some(row));
        }
        if !self.mirror.may_look_up() {
            return Ok(None);
        }
        let r = sqlx::query(
            "SELECT id, name, scope, owner, created_at, revoked_at FROM tokens WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let row = r.as_ref().map(token_row).transpose()?;
        if let Some(row) = &row {
            self.mirror.add_token(hash, row.clone());
        }
        Ok(row)
    }

    /// Reloads the live tokens into the mirror: revocations by another process
    /// (`pirack token revoke`) take effect within the controller's refresh.
    pub async fn refresh_tokens(&self) -> Result<(), StoreError> {
        let started = now_ms();
        let rows = sqlx::query(
            "SELECT hash, id, name, scope, owner, created_at, revoked_at FROM tokens WHERE revoked_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let live = rows
            .iter()
            .map(|r| Ok((r.try_get("hash")?, token_row(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.mirror.load_tokens(live, started);
        Ok(())
    }

    /// Whether token `id` was live at `at` (Unix ms) or later: from the mirror
    /// when it was reloaded since, else after one reload shared by every caller
    /// waiting (an event stream checks its token against each event's time, so
    /// a revocation by another process is seen before the next event goes out).
    pub async fn token_live_at(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        if self.mirror.tokens_at() < at {
            let _one = self.mirror.reloading.lock().await;
            if self.mirror.tokens_at() < at {
                self.refresh_tokens().await?;
            }
        }
        Ok(self.mirror.token_live(id))
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query("SELECT id, name, scope, owner, created_at, revoked_at FROM tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_row).collect()
    }

    /// Whether token `id` exists and is not revoked (as the mirror knows it).
    pub fn token_live(&self, id: &str) -> bool {
        self.mirror.token_live(id)
    }

    /// Revokes a token by id; false if there is no such live token.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        self.refresh_tokens().await?;
        Ok(done.rows_affected() == 1)
    }
}
