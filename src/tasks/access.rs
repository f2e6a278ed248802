//! Who may see and steer which task: roles, the caller ([`Principal`]), and
//! API tokens, which are stored only as SHA-256 hashes.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::{Schedule, Task};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Creates tasks and sees only its own.
    User,
    /// Sees (and, if configured, cancels) the tasks of one product.
    Admin,
    /// Sees and steers everything.
    Superuser,
}

impl Role {
    /// The name used in tokens and the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Superuser => "superuser",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not `user`, `admin` or `superuser`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (one of {1})")]
pub struct UnknownRole(pub String, pub &'static str);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            "superuser" => Ok(Role::Superuser),
            _ => Err(UnknownRole(s.into(), "user, admin, superuser")),
        }
    }
}

/// Who may cancel a task (`auth.cancel_role`). Each level includes the ones
/// above it: `owner` lets owners, product admins and superusers cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRole {
    /// Superusers only.
    Superuser,
    /// Superusers and the admins of the task's product.
    Admin,
    /// Those, and the task's owner.
    Owner,
}

impl FromStr for CancelRole {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "superuser" => Ok(CancelRole::Superuser),
            "admin" => Ok(CancelRole::Admin),
            "owner" => Ok(CancelRole::Owner),
            _ => Err(UnknownRole(s.into(), "superuser, admin, owner")),
        }
    }
}

/// Which tasks a caller may cancel ([`Principal::cancel_reach`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReach {
    /// Every task it sees.
    Seen,
    /// Those it created.
    Own,
    /// None.
    Nothing,
}

/// An authenticated caller: the name, role and product of its token. A
/// task's owner is the name of the token that created it, and its product
/// that token's product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The owner of the tasks it creates.
    pub name: String,
    /// What it may see and do.
    pub role: Role,
    /// The product its tasks belong to (an admin's whole scope).
    pub product: Option<String>,
}

impl Principal {
    /// A token holder as `errand token create` would make it: a name, and a
    /// product for an admin (whose whole scope is that product).
    pub fn checked(name: &str, role: Role, product: Option<&str>) -> Result<Principal, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err(
                "a token needs a name: it becomes the owner of the tasks it creates".into(),
            );
        }
        let product = product.map(str::trim).filter(|p| !p.is_empty());
        if role == Role::Admin && product.is_none() {
            return Err("an admin token needs --product: an admin sees one product's tasks".into());
        }
        Ok(Principal {
            name: name.to_string(),
            role,
            product: product.map(str::to_string),
        })
    }

    /// Users see their own tasks, product admins their product's, superusers
    /// all (see [`Principal::scope`]). A task the caller may not see must
    /// look like no task at all (404).
    pub fn can_see(&self, task: &Task) -> bool {
        self.scope().allows(task)
    }

    /// Superusers see and steer everything.
    pub fn is_superuser(&self) -> bool {
        self.role == Role::Superuser
    }

    /// Admins and superusers see counts and workers.
    pub fn is_operator(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Superuser)
    }

    /// Which of the tasks it sees the caller may cancel, under the
    /// configured policy.
    pub fn cancel_reach(&self, policy: CancelRole) -> CancelReach {
        match (self.role, policy) {
            (Role::Superuser, _) | (Role::Admin, CancelRole::Admin | CancelRole::Owner) => {
                CancelReach::Seen
            }
            (_, CancelRole::Owner) => CancelReach::Own,
            _ => CancelReach::Nothing,
        }
    }

    /// Whether the caller may see and steer `schedule` (superusers: every
    /// one; product admins: their product's). One it may not is a 404.
    pub fn can_manage(&self, schedule: &Schedule) -> bool {
        match self.role {
            Role::Superuser => true,
            Role::Admin => self.product.is_some() && schedule.product == self.product,
            Role::User => false,
        }
    }

    /// Whether the caller may cancel `task`, under the configured policy.
    pub fn can_cancel(&self, task: &Task, policy: CancelRole) -> bool {
        self.can_see(task)
            && match self.cancel_reach(policy) {
                CancelReach::Seen => true,
                CancelReach::Own => task.owner == self.name,
                CancelReach::Nothing => false,
            }
    }
}

/// A freshly minted API token: shown once, then only its hash is kept.
pub struct ApiToken(String);

impl ApiToken {
    /// 256 random bits from the operating system, as `errand_` + 64 hex digits.
    pub fn generate() -> Result<ApiToken, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(ApiToken(format!("errand_{}", hex(&bytes))))
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// The SHA-256 of a token: what the database stores and what a presented
/// bearer token is looked up by. A fast hash is right here: the tokens are
/// 256 random bits, so there is nothing to brute-force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(presented: &str) -> TokenHash {
        TokenHash(Sha256::digest(presented.as_bytes()).into())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Progress, Status, TaskId, TaskToken};
    use super::*;

    fn task(owner: &str, product: Option<&str>) -> Task {
        let now = chrono::Utc::now();
        Task {
            id: TaskId(1),
            record: super::super::TaskRecord {
                token: TaskToken::generate(),
                kind: "sleep".into(),
                queue: "default".into(),
                priority: 0,
                status: Status::Queued,
                progress: Progress::default(),
                attempt: 0,
                max_attempts: 3,
                snoozes: 0,
                owner: owner.into(),
                product: product.map(Into::into),
                payload: serde_json::json!({}),
                result: None,
                error: None,
                errors: vec![],
                depends_on: vec![],
                created_at: now,
                run_at: now,
                start_by: None,
                schedule: None,
                scheduled_for: None,
                started_at: None,
                finished_at: None,
            },
            cancel_requested_at: None,
            timeout_ms: None,
            callback_url: None,
            files: Default::default(),
            lease_expires_at: None,
            worker_id: None,
        }
    }

    fn who(name: &str, role: Role, product: Option<&str>) -> Principal {
        Principal {
            name: name.into(),
            role,
            product: product.map(Into::into),
        }
    }

    #[test]
    fn visibility_by_role() {
        let t = task("alice", Some("shop"));
        assert!(who("alice", Role::User, Some("shop")).can_see(&t));
        assert!(!who("bob", Role::User, Some("shop")).can_see(&t));
        assert!(who("shop-admin", Role::Admin, Some("shop")).can_see(&t));
        assert!(!who("blog-admin", Role::Admin, Some("blog")).can_see(&t));
        assert!(who("root", Role::Superuser, None).can_see(&t));
        // An admin of no product sees no product-less task but its own.
        let loose = task("carol", None);
        assert!(!who("odd-admin", Role::Admin, None).can_see(&loose));
    }

    #[test]
    fn cancel_policy_widens_step_by_step() {
        let t = task("alice", Some("shop"));
        let owner = who("alice", Role::User, Some("shop"));
        let admin = who("shop-admin", Role::Admin, Some("shop"));
        let other_admin = who("blog-admin", Role::Admin, Some("blog"));
        let root = who("root", Role::Superuser, None);
        let stranger = who("bob", Role::User, Some("shop"));
        for (policy, allowed) in [
            (CancelRole::Superuser, [false, false, false, true, false]),
            (CancelRole::Admin, [false, true, false, true, false]),
            (CancelRole::Owner, [true, true, false, true, false]),
        ] {
            let got =
                [&owner, &admin, &other_admin, &root, &stranger].map(|p| p.can_cancel(&t, policy));
            assert_eq!(got, allowed, "{policy:?}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = ApiToken::generate().unwrap();
        let b = ApiToken::generate().unwrap();
        assert_ne!(a.secret(), b.secret());
        assert!(a.secret().starts_with("errand_") && a.secret().len() == 7 + 64);
        assert_eq!(a.hash(), TokenHash::of(a.secret()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn role_names_parse() {
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
        assert_eq!("owner".parse::<CancelRole>().unwrap(), CancelRole::Owner);
        assert!("user".parse::<CancelRole>().is_err());
    }
}
