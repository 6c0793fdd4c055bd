//! Each slot's proxy settings: the PROXY protocol header its Pi is sent.

use super::{Store, StoreError, now_ms};
use pirack_proxy::routes::Protocol;
use sqlx::Row;
use std::collections::HashMap;

fn parse(text: &str) -> Result<Protocol, StoreError> {
    match text {
        "off" => Ok(Protocol::Off),
        "v1" => Ok(Protocol::V1),
        "v2" => Ok(Protocol::V2),
        other => Err(StoreError::Invalid(format!("proxy protocol `{other}`"))),
    }
}

impl Store {
    /// The protocol set for each slot that has one (others get v1).
    pub async fn proxy_protocols(&self) -> Result<HashMap<String, Protocol>, StoreError> {
        let rows = sqlx::query("SELECT slot, protocol FROM proxy_settings")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let protocol: String = r.try_get("protocol")?;
                Ok((r.try_get("slot")?, parse(&protocol)?))
            })
            .collect()
    }

    pub async fn set_proxy_protocol(
        &self,
        slot: &str,
        protocol: Protocol,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO proxy_settings (slot, protocol, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (slot) DO UPDATE SET protocol = $2, updated_at = $3",
        )
        .bind(slot)
        .bind(protocol.name())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
