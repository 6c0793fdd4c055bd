//! Who is calling: a bearer token looked up (by its hash) in the store. Admins see
//! every slot; a customer sees only their own, and other slots do not exist for them
//! (404, the same answer as for a slot nobody has).

use super::error::ApiError;
use crate::Controller;
use crate::actions::By;
use crate::store::slots::SlotRow;
use crate::store::tokens::{Scope, TokenRow};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;

pub struct Caller(pub TokenRow);

impl Caller {
    /// The owner whose slots this caller may see; `None` for an admin (all).
    pub fn owner(&self) -> Option<&str> {
        match &self.0.scope {
            Scope::Admin => None,
            Scope::Customer(o) => Some(o),
        }
    }

    pub fn admin(&self) -> Result<(), ApiError> {
        match self.0.scope {
            Scope::Admin => Ok(()),
            Scope::Customer(_) => Err(ApiError::forbidden("this needs an admin token")),
        }
    }

    /// The slot if this caller may see it, else the same 404 as for no slot.
    pub fn sees(&self, slot: SlotRow, asked: &str) -> Result<SlotRow, ApiError> {
        match self.owner() {
            Some(me) if slot.owner.as_deref() != Some(me) => {
                Err(ApiError::not_found(format!("no slot {asked}")))
            }
            _ => Ok(slot),
        }
    }

    /// How the caller is named in what it causes: every tenant of the slot may
    /// read the name (`staff`, `customer acme`); the token only staff.
    pub fn by(&self) -> By {
        By {
            name: match self.owner() {
                None => "staff".into(),
                Some(o) => format!("customer {o}"),
            },
            token: Some(format!("token {} ({})", self.0.id, self.0.name)),
        }
    }
}

impl FromRequestParts<Arc<Controller>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctl: &Arc<Controller>,
    ) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not `Bearer <token>`")
            })?;
        match ctl.store.authenticate(token.trim()).await? {
            Some(row) => Ok(Caller(row)),
            None => Err(ApiError::unauthorized("unknown or revoked token")),
        }
    }
}
