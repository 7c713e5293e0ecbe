//! Where links in platform mail (password resets, invitations) point. A tenant's owners choose
//! its redirect origins, so a link may point there only when the recipient is that tenant's
//! alone (a member of exactly one tenant, holding no platform or partner role), is not one of
//! its owners, and the tenant is live (provisioning or active). Anyone else gets the platform's
//! own origin: no tenant's owner or admin can steer another tenant's, a partner's, an
//! operator's or a fellow owner's link to a host they control, and a suspended or deleted
//! tenant's domain (which may lapse and be bought by someone else) is never followed.

use crate::domain::tenant::{RedirectOrigin, TenantStatus};
use crate::domain::{Role, User};
use crate::runtime::config::LinkConfig;
use crate::store::{StoreError, TenantStore, UserStore};

/// The product's name in mail for users without a single tenant.
pub const PLATFORM_NAME: &str = "SaaS Control Plane";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    pub origin: RedirectOrigin,
    /// The tenant named in the mail, or the platform's name.
    pub name: String,
}

pub async fn link_target<S: UserStore + TenantStore + ?Sized>(
    store: &S,
    user: &User,
    links: &LinkConfig,
) -> Result<LinkTarget, StoreError> {
    let platform = |name: String| LinkTarget {
        origin: links.platform_origin.clone(),
        name,
    };
    if user.platform_admin || store.holds_partner_role(&user.id).await? {
        return Ok(platform(PLATFORM_NAME.to_string()));
    }
    // Two are enough to tell "exactly one" apart.
    let memberships = store.memberships_up_to(&user.id, 2).await?;
    let [only] = memberships.as_slice() else {
        return Ok(platform(PLATFORM_NAME.to_string()));
    };
    let Some(tenant) = store.tenant_by_id(&only.tenant_id).await? else {
        return Ok(platform(PLATFORM_NAME.to_string()));
    };
    let live = matches!(
        tenant.access_status(),
        TenantStatus::Active | TenantStatus::Provisioning
    );
    if only.role == Role::Owner || !live {
        return Ok(platform(tenant.name));
    }
    Ok(match tenant.redirect_origins.first() {
        Some(primary) => LinkTarget {
            origin: primary.clone(),
            name: tenant.name,
        },
        None => platform(tenant.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CommitStore, MemoryStore};
    use crate::testing;

    fn config() -> LinkConfig {
        LinkConfig {
            platform_origin: RedirectOrigin::parse("https://console.example.com", false).unwrap(),
        }
    }

    async fn hostile(store: &MemoryStore, tenant: &crate::domain::tenant::Tenant) {
        let evil = RedirectOrigin::parse("https://evil.example.net", false).unwrap();
        store
            .set_redirect_origins(&tenant.id, &[evil])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_single_tenant_member_gets_the_tenants_primary_origin() {
        let store = MemoryStore::new();
        let u = testing::user(&store, false).await;
        let t = testing::tenant(&store, "Acme", Some((&u, Role::Member))).await;
        // No origin yet: the platform's, with the tenant's name.
        let target = link_target(&store, &u, &config()).await.unwrap();
        assert_eq!(
            (target.origin.as_str(), target.name.as_str()),
            ("https://console.example.com", "Acme")
        );
        hostile(&store, &t).await;
        let target = link_target(&store, &u, &config()).await.unwrap();
        assert_eq!(target.origin.as_str(), "https://evil.example.net");
    }

    #[tokio::test]
    async fn users_of_two_tenants_operators_and_partner_admins_get_the_platform_origin() {
        let store = MemoryStore::new();
        let two = testing::user(&store, false).await;
        let a = testing::tenant(&store, "A", Some((&two, Role::Member))).await;
        let b = testing::tenant(&store, "B", Some((&two, Role::Owner))).await;
        let operator = testing::user(&store, true).await;
        store
            .add_membership(&operator.id, &a, Role::Member)
            .await
            .unwrap();
        let partner = testing::user(&store, false).await;
        store
            .add_membership(&partner.id, &b, Role::Member)
            .await
            .unwrap();
        store
            .grant_partner_admin(&partner.id, &crate::domain::PartnerId::new_random())
            .await
            .unwrap();
        // Whatever the tenants' admins set.
        hostile(&store, &a).await;
        hostile(&store, &b).await;
        for (who, u) in [
            ("two memberships", &two),
            ("operator", &operator),
            ("partner admin", &partner),
        ] {
            let target = link_target(&store, u, &config()).await.unwrap();
            assert_eq!(
                target.origin.as_str(),
                "https://console.example.com",
                "{who}"
            );
            assert_eq!(target.name, PLATFORM_NAME, "{who}");
        }
    }

    #[tokio::test]
    async fn owners_and_members_of_suspended_or_deleted_tenants_get_the_platform_origin() {
        let store = MemoryStore::new();
        let owner = testing::user(&store, false).await;
        let t = testing::tenant(&store, "Acme", Some((&owner, Role::Owner))).await;
        let admin = testing::user(&store, false).await;
        store
            .add_membership(&admin.id, &t, Role::Admin)
            .await
            .unwrap();
        hostile(&store, &t).await;
        // An owner's link never follows the tenant's origins (a fellow owner set them).
        let target = link_target(&store, &owner, &config()).await.unwrap();
        assert_eq!(
            (target.origin.as_str(), target.name.as_str()),
            ("https://console.example.com", "Acme")
        );
        // An admin's does while the tenant is live...
        let target = link_target(&store, &admin, &config()).await.unwrap();
        assert_eq!(target.origin.as_str(), "https://evil.example.net");
        // ...and not once it is suspended or deleted.
        for status in [TenantStatus::Suspended, TenantStatus::Deleted] {
            let mut changed = store.tenant_by_id(&t.id).await.unwrap().unwrap();
            changed.status = status;
            let expect_version = changed.version;
            changed.version += 1;
            store
                .commit(vec![crate::store::changes::Change::UpdateTenant {
                    tenant: changed,
                    expect_version,
                }])
                .await
                .unwrap();
            let target = link_target(&store, &admin, &config()).await.unwrap();
            assert_eq!(
                target.origin.as_str(),
                "https://console.example.com",
                "{status:?}"
            );
        }
    }
}
