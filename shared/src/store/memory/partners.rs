//! Partners and their admins (read side).

use super::*;

#[async_trait]
impl PartnerStore for MemoryStore {
    async fn partner_by_slug(&self, slug: &PartnerSlug) -> Result<Option<Partner>, StoreError> {
        Ok(self.with(|d| {
            d.partner_slugs
                .get(slug)
                .and_then(|id| d.partners.get(id))
                .cloned()
        }))
    }

    async fn partner_by_id(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError> {
        Ok(self.with(|d| d.partners.get(id).cloned()))
    }

    async fn partners_page(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Partner>, StoreError> {
        let after = position_after("partners", cursor, "GSI2PK", "PARTNERS", "GSI2SK")?;
        let mut all: Vec<Partner> = self.with(|d| d.partners.values().cloned().collect());
        all.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(page_after(
            all,
            after.as_deref(),
            limit,
            |p| p.slug.to_string(),
            |last| {
                crate::store::page::encode(
                    "partners",
                    BTreeMap::from([
                        ("GSI2PK".to_string(), "PARTNERS".to_string()),
                        ("GSI2SK".to_string(), last.to_string()),
                    ]),
                )
            },
            false,
        ))
    }

    async fn partner_admins_page(
        &self,
        partner: &PartnerId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<UserId>, StoreError> {
        let query = format!("partner-admins:{partner}");
        let partition = format!("PARTNER#{partner}");
        let after = position_after(&query, cursor, "GSI1PK", &partition, "GSI1SK")?;
        let mut all: Vec<UserId> = self.with(|d| {
            d.partner_admins
                .iter()
                .filter(|(_, ps)| ps.contains(partner))
                .map(|(u, _)| u.clone())
                .collect()
        });
        all.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(page_after(
            all,
            after.as_deref(),
            limit,
            |u| format!("USER#{u}"),
            |last| {
                crate::store::page::encode(
                    &query,
                    BTreeMap::from([
                        ("GSI1PK".to_string(), partition.clone()),
                        ("GSI1SK".to_string(), last.to_string()),
                    ]),
                )
            },
            false,
        ))
    }
}
